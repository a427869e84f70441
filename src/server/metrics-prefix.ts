/**
 * Which names /metrics exports: "vellum" (vellum:…) only, or "vllm" for vellum:… and a vllm:… twin of every
 * vellum: series, for gateways, dashboards and autoscalers that hard-code vLLM's names.
 */
export type MetricsPrefix = "vellum" | "vllm";

export const metricsPrefixes: readonly MetricsPrefix[] = ["vellum", "vllm"];

/**
 * The exposition text with every `vellum:` family (its HELP and TYPE lines and its samples) repeated under
 * `prefix:`. Working on the text rather than on a list of metrics means every metric in the registry gets its
 * twin, whoever registered it, and the twin's values are the very numbers of that scrape.
 */
export function withPrefixAlias(text: string, prefix: MetricsPrefix): string {
  if (prefix === "vellum") return text;
  const aliased = text
    .split("\n")
    .filter((line) => /^(# (HELP|TYPE) )?vellum:/.test(line))
    .map((line) => line.replace(/^(# (?:HELP|TYPE) )?vellum:/, `$1${prefix}:`));
  if (aliased.length === 0) return text;
  return `${text.endsWith("\n") ? text : `${text}\n`}${aliased.join("\n")}\n`;
}

import type { ModelConfig } from "../config.js";

/**
 * The first field in which `got` (a config as a written file would be read back) differs from `want`, as
 * "field is X, the model has Y"; undefined when they agree. Numbers agree when they round to the same float32,
 * the precision files store them in.
 */
export function configMismatch(want: ModelConfig, got: ModelConfig): string | undefined {
  const fields = new Set([...Object.keys(want), ...Object.keys(got)]) as Set<keyof ModelConfig>;
  for (const field of fields) {
    if (!sameValue(want[field], got[field])) {
      return `${field} would be ${show(got[field])}, the model has ${show(want[field])}`;
    }
  }
  return undefined;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b || Math.fround(a) === Math.fround(b);
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (isRecord(a) && isRecord(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].every((k) => sameValue(a[k], b[k]));
  }
  return a === b;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function show(v: unknown): string {
  const text = v === undefined ? "absent" : JSON.stringify(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The table `bench compare` prints: each measure for vellum and llama.cpp and their ratio, as issue 19 lists them. */

/** One engine's medians. */
export interface EngineFigures {
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  batchedDecodeTokensPerSecond: number;
  server: ServerFigures[];
}

export interface ServerFigures {
  streams: number;
  outputTokensPerSecond: number;
  ttftP50Seconds: number;
}

/** What the measures are and the roofs their fractions are of, all from the same run. */
export interface CompareSettings {
  prompt: number;
  batch: number;
  /** Best read bandwidth of the run, bytes/s. */
  readBytesPerSecond: number;
  /** int8 multiply-add peak, ops/s. */
  int8OpsPerSecond: number;
  /** Bytes one single-stream decode step reads: weights and KV cache. */
  bytesPerDecodeToken: number;
  /** Matmul ops (multiply and add) of one token through the weights. */
  opsPerToken: number;
}

export interface CompareRow {
  measure: string;
  vellum: number;
  llamaCpp: number;
  /** vellum ÷ llama.cpp; absent for roofline fractions, where each engine's own figure is the point. */
  ratio?: number;
}

export function compareRows(
  s: CompareSettings,
  vellum: EngineFigures,
  llamaCpp: EngineFigures,
): CompareRow[] {
  const both = (measure: string, of: (e: EngineFigures) => number): CompareRow => ({
    measure,
    vellum: of(vellum),
    llamaCpp: of(llamaCpp),
    ratio: of(vellum) / of(llamaCpp),
  });
  const fraction = (measure: string, of: (e: EngineFigures) => number): CompareRow => ({
    measure,
    vellum: of(vellum),
    llamaCpp: of(llamaCpp),
  });
  const server = (e: EngineFigures, streams: number) =>
    e.server.find((f) => f.streams === streams) as ServerFigures;
  const rows = [
    both(`prefill ${s.prompt}, tok/s`, (e) => e.prefillTokensPerSecond),
    both("decode, tok/s", (e) => e.decodeTokensPerSecond),
    both(`batched decode at ${s.batch}, tok/s`, (e) => e.batchedDecodeTokensPerSecond),
  ];
  for (const { streams } of vellum.server) {
    const name = `server, ${streams} stream${streams === 1 ? "" : "s"}`;
    rows.push(both(`${name}, output tok/s`, (e) => server(e, streams).outputTokensPerSecond));
    rows.push(both(`${name}, TTFT p50 s`, (e) => server(e, streams).ttftP50Seconds));
  }
  rows.push(
    fraction(
      "decode, fraction of read bandwidth",
      (e) => (e.decodeTokensPerSecond * s.bytesPerDecodeToken) / s.readBytesPerSecond,
    ),
    fraction(
      `prefill ${s.prompt}, fraction of int8 peak`,
      (e) => (e.prefillTokensPerSecond * s.opsPerToken) / s.int8OpsPerSecond,
    ),
    fraction(
      `batched decode at ${s.batch}, fraction of int8 peak`,
      (e) => (e.batchedDecodeTokensPerSecond * s.opsPerToken) / s.int8OpsPerSecond,
    ),
  );
  return rows;
}

/** Three significant figures or so, as the issue writes them: 1660, 869, 37.8, 1.54. */
function figure(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** A Markdown table, to paste into an issue as it is. */
export function formatCompareTable(rows: CompareRow[]): string {
  const cells = [
    ["measure", "vellum", "llama.cpp", "vellum ÷ llama.cpp"],
    ...rows.map((r) => [
      r.measure,
      figure(r.vellum),
      figure(r.llamaCpp),
      r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}×`,
    ]),
  ];
  const widths = cells[0].map((_, c) => Math.max(...cells.map((row) => row[c].length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join("\n");
}

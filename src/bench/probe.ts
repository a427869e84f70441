/**
 * This machine's limits, measured by the addon: read bandwidth (a 512 MiB buffer summed with AVX2 loads) and
 * peak f32 FMA rate (12 independent FMA chains per thread), on 1 thread and on --threads.
 * Usage: vellum bench probe [--threads N] [--out FILE.json]
 */

import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { nativeAddon } from "../backend/native/addon.js";
import { physicalCores } from "../backend/native/physical-cores.js";
import { gb, probe, writeJson } from "./native-bench-setup.js";

export async function runProbe(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: { threads: { type: "string" }, out: { type: "string" } },
  });
  const threads = values.threads ? Number(values.threads) : physicalCores();
  const rows = [];
  console.log(`kernel path: ${nativeAddon().bestKernelPath()}`);
  console.log("threads | read GB/s | f32 FMA GFLOP/s");
  for (const t of [...new Set([1, threads])]) {
    const r = probe(t);
    rows.push({
      threads: t,
      readBytesPerSecond: r.readBytesPerSecond,
      fmaFlopsPerSecond: r.fmaFlopsPerSecond,
    });
    console.log(
      `${String(t).padStart(7)} | ${gb(r.readBytesPerSecond).padStart(9)} | ${gb(r.fmaFlopsPerSecond).padStart(15)}`,
    );
  }
  writeJson(values.out ?? join(tmpdir(), "vellum-bench", `probe-t${threads}.json`), {
    kernelPath: nativeAddon().bestKernelPath(),
    rows,
  });
}

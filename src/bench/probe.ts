/**
 * This machine's limits, measured by the addon: read bandwidth (a 512 MiB buffer summed with AVX2 loads) and
 * peak f32 FMA rate (12 independent FMA chains per thread), on 1 thread and on --threads.
 * Usage: vellum bench probe [--threads N] [--out FILE.json]
 */
import { nativeAddon } from "../backend/native/addon.js";
import { gb, probe, resultPath, writeJson } from "./native-bench-setup.js";

export interface ProbeOptions {
  /** Measured on 1 thread and on this many. */
  threads: number;
  out?: string;
}

export async function runProbe({ threads, out }: ProbeOptions) {
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
  writeJson(out ?? resultPath(`probe-t${threads}`), {
    kernelPath: nativeAddon().bestKernelPath(),
    rows,
  });
}

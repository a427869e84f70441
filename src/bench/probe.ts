/**
 * This machine's limits, measured by the addon on 1 thread and on --threads: read bandwidth of a 512 MiB buffer
 * with 1, 2, 4 and 8 concurrent streams per thread (median and best of repeated runs), and the peak rate of each
 * int8, bf16 and f32 instruction the kernel paths this CPU runs are built on. Roofline fractions divide by the
 * best figures of one run: the machine's bandwidth drifts with other tenants.
 * Usage: vellum bench probe [--threads N] [--out FILE.json]
 */
import { cpus } from "node:os";
import { nativeAddon, type ProbeResult } from "../backend/native/addon.js";
import { gb, probe, resultPath, writeJson } from "./native-bench-setup.js";

export interface ProbeOptions {
  /** Measured on 1 thread and on this many. */
  threads: number;
  out?: string;
}

export async function runProbe({ threads, out }: ProbeOptions) {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const kernelPath = nativeAddon().bestKernelPath();
  console.log(`CPU: ${cpu}; kernel path: ${kernelPath}`);
  const rows: ({ threads: number } & ProbeResult)[] = [];
  for (const t of [...new Set([1, threads])]) rows.push({ threads: t, ...probe(t) });
  printReadCurve(rows);
  printPeaks(rows);
  writeJson(out ?? resultPath(`probe-t${threads}`), { cpu, kernelPath, rows });
}

function printReadCurve(rows: ({ threads: number } & ProbeResult)[]) {
  console.log("\nread GB/s, median / best; each thread reads S separate regions in one loop");
  const streams = rows[0].readCurve.map((p) => p.streams);
  const cell = (s: string) => s.padStart(13);
  console.log(`threads |${streams.map((s) => cell(`S=${s}`)).join(" |")} | roof (best)`);
  for (const r of rows) {
    const cells = r.readCurve.map((p) => cell(`${gb(p.medianBytesPerSecond)} / ${gb(p.bestBytesPerSecond)}`));
    console.log(`${String(r.threads).padStart(7)} |${cells.join(" |")} | ${gb(r.readBytesPerSecond)}`);
  }
}

function printPeaks(rows: ({ threads: number } & ProbeResult)[]) {
  console.log("\npeak GOP/s (a multiply-add = 2 ops), best of repeated runs");
  const width = Math.max(...rows[0].peaks.map((p) => p.instruction.length));
  const header = rows.map((r) => `${r.threads} thread${r.threads === 1 ? "" : "s"}`.padStart(10));
  console.log(`${"path".padEnd(11)} | ${"instruction".padEnd(width)} |${header.join(" |")}`);
  rows[0].peaks.forEach((p, i) => {
    const cells = rows.map((r) => gb(r.peaks[i].opsPerSecond).padStart(10));
    console.log(`${p.path.padEnd(11)} | ${p.instruction.padEnd(width)} |${cells.join(" |")}`);
  });
}

import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { loadNativeAddon } from "../backend/native/addon.js";
import { physicalCores } from "../backend/native/physical-cores.js";
import { InputError } from "../model/errors.js";
import { type CpuMeasurement, measureCpu } from "./cpu-probe.js";
import { type MeasuredRates, type MeasuredRatesFor, measureRates } from "./measured-rates.js";

/** What the planner and the simulator need to know about an accelerator. All SI units: bytes, bytes/s, FLOP/s, s. */
export interface HardwareProfile {
  name: string;
  description: string;
  memoryBytes: number;
  bandwidthBytesPerS: number;
  /** Dense peak by compute type; fp16 also serves int8/int4 weight-only quantization. */
  peakFlops: { fp32: number; fp16: number; int8: number };
  stepOverheadS: number;
  /** vellum's measured rates (cpu-local only), used instead of the roofline. */
  measuredRates?: MeasuredRates;
}

interface HardwareEntry {
  description: string;
  memoryGiB: number;
  bandwidthGBps: number;
  peakTflops: { fp32: number; fp16: number; int8: number };
  stepOverheadMs: number;
}

/** Far larger than the caches, as the native bench's probe uses. */
const nativeProbeBytes = 512 * 2 ** 20;

const hardwareFile = fileURLToPath(new URL("../../profiles/hardware.json", import.meta.url));

function hardwareEntries(): Map<string, HardwareEntry> {
  const table = JSON.parse(readFileSync(hardwareFile, "utf8")) as Record<string, HardwareEntry | string>;
  return new Map(Object.entries(table).filter((e): e is [string, HardwareEntry] => typeof e[1] === "object"));
}

export function hardwareNames(): string[] {
  return [...hardwareEntries().keys(), "cpu-local"];
}

/**
 * A named profile from profiles/hardware.json, or `cpu-local`, measured now on this machine; given a model
 * and dtypes, cpu-local also measures vellum's rates for them (what `simulate` needs).
 */
export function hardwareProfile(name: string, ratesFor?: MeasuredRatesFor): HardwareProfile {
  if (name === "cpu-local") return cpuLocalProfile(ratesFor);
  const e = hardwareEntries().get(name);
  if (!e) throw new InputError(`unknown hardware "${name}" (known: ${hardwareNames().join(", ")})`);
  return {
    name,
    description: e.description,
    memoryBytes: e.memoryGiB * 2 ** 30,
    bandwidthBytesPerS: e.bandwidthGBps * 1e9,
    peakFlops: {
      fp32: e.peakTflops.fp32 * 1e12,
      fp16: e.peakTflops.fp16 * 1e12,
      int8: e.peakTflops.int8 * 1e12,
    },
    stepOverheadS: e.stepOverheadMs / 1000,
  };
}

/**
 * This machine: total RAM, and read bandwidth and f32 FMA rate from the native addon's probe on all physical
 * cores (the rates the native backend can reach), plus vellum's measured rates for `ratesFor`; without
 * the addon, bandwidth and FMA rate from the one-thread JS probe and no measured rates.
 */
function cpuLocalProfile(ratesFor?: MeasuredRatesFor): HardwareProfile {
  const addon = loadNativeAddon();
  const threads = physicalCores();
  let m: CpuMeasurement;
  let how: string;
  let measuredRates: MeasuredRates | undefined;
  if (addon instanceof Error) {
    m = measureCpu();
    how = "JS probe, 1 thread (native addon not loaded)";
  } else {
    const r = addon.probe(threads, nativeProbeBytes);
    m = { bandwidthBytesPerS: r.readBytesPerSecond, flopsPerS: r.fmaFlopsPerSecond };
    how = `native probe, ${threads} threads`;
    if (ratesFor) {
      measuredRates = measureRates(addon, ratesFor, threads);
      how += `; ${ratesFor.weightDtype} matmul, attention and sampling timed on the model's shapes`;
    }
  }
  const gbps = (m.bandwidthBytesPerS / 1e9).toFixed(1);
  const gflops = (m.flopsPerS / 1e9).toFixed(1);
  return {
    name: "cpu-local",
    description: `this machine, measured (${how}): ${gbps} GB/s read, ${gflops} GFLOP/s f32 FMA`,
    memoryBytes: totalmem(),
    bandwidthBytesPerS: m.bandwidthBytesPerS,
    peakFlops: { fp32: m.flopsPerS, fp16: m.flopsPerS, int8: m.flopsPerS },
    stepOverheadS: 0.001,
    measuredRates,
  };
}

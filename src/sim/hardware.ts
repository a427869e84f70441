import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { loadNativeAddon } from "../backend/native/addon.js";
import { physicalCores } from "../backend/native/physical-cores.js";
import { InputError } from "../model/errors.js";
import { type CpuMeasurement, measureCpu } from "./cpu-probe.js";
import type { HardwareProfile } from "./types.js";

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

/** A named profile from profiles/hardware.json, or `cpu-local`, measured now on this machine. */
export function hardwareProfile(name: string): HardwareProfile {
  if (name === "cpu-local") return cpuLocalProfile();
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
 * cores (the rates the native backend can reach); without the addon, from the one-thread JS probe.
 */
function cpuLocalProfile(): HardwareProfile {
  const addon = loadNativeAddon();
  const threads = physicalCores();
  let m: CpuMeasurement;
  let how: string;
  if (addon instanceof Error) {
    m = measureCpu();
    how = "JS probe, 1 thread (native addon not loaded)";
  } else {
    const r = addon.probe(threads, nativeProbeBytes);
    m = { bandwidthBytesPerS: r.readBytesPerSecond, flopsPerS: r.fmaFlopsPerSecond };
    how = `native probe, ${threads} threads`;
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
  };
}

/** The profile the cost model prices steps with, and for cpu-local the rates it measured. */
export function formatHardware(h: HardwareProfile): string {
  const r = h.measuredRates;
  if (!r)
    return `hardware: ${h.name}, ${h.description}; step overhead ${(h.stepOverheadS * 1000).toFixed(1)} ms`;
  const gbps = (secondsPerByte: number[]) =>
    r.batches.map((b, i) => `${b}: ${(1 / secondsPerByte[i] / 1e9).toFixed(2)}`).join(", ");
  const us = (seconds: number) => (seconds * 1e6).toFixed(1);
  const ns = (seconds: number) => (seconds * 1e9).toFixed(2);
  const { attention: a, sampling, overhead } = r;
  return [
    `hardware: ${h.name}, ${h.description}`,
    `measured: ${r.weightDtype} forward pass without attention or classifier, GB of layer weights per second by batch size {${gbps(r.secondsPerWeightByte)}}`,
    `  classifier, GB of its weights per second by rows of logits {${gbps(r.classifierSecondsPerByte)}}`,
    `  decode attention by decodes in a step {${r.batches
      .map(
        (b, i) =>
          `${b}: ${us(a.decodeStepSeconds[i])} µs + ${ns(a.decodePairSeconds[i])} ns/pair + ${ns(a.decodeKeySeconds[i])} ns/key`,
      )
      .join(", ")}}`,
    `  prefill attention: ${us(a.prefillStepSeconds)} µs per step + ${us(a.prefillTokenSeconds)} µs per token + ${ns(a.prefillPairSeconds)} ns per pair`,
    `  sampling: ${us(sampling.stepSeconds)} µs per step + ${ns(sampling.logitSeconds)} ns per logit; ` +
      `engine overhead: ${us(overhead.stepSeconds)} µs per step + ${us(overhead.requestSeconds)} µs per request`,
  ].join("\n");
}

/**
 * The types the planner, the hardware profiles, the measured rates and the cost model share. They live here,
 * below all four, so that none of those modules imports another just for a type.
 */

export type WeightDtype = "fp32" | "fp16" | "int8" | "int4";
/** fp32 is what vellum's CPU backends store. */
export type KvDtype = "fp32" | "fp16" | "fp8" | "int8";
export const weightDtypes: WeightDtype[] = ["fp32", "fp16", "int8", "int4"];
export const kvDtypes: KvDtype[] = ["fp32", "fp16", "fp8", "int8"];

/** What the planner and the simulator need to know about an accelerator. All SI units: bytes, bytes/s, FLOP/s, s. */
export interface HardwareProfile {
  name: string;
  description: string;
  memoryBytes: number;
  bandwidthBytesPerS: number;
  /** Dense peak by compute type; fp16 also serves int8/int4 weight-only quantization. */
  peakFlops: { fp32: number; fp16: number; int8: number };
  stepOverheadS: number;
  /** vellum's measured rates on this machine (cpu-local, see measured-rates.ts), used instead of the roofline. */
  measuredRates?: MeasuredRates;
}

export interface MeasuredRates {
  weightDtype: WeightDtype;
  /** Batch sizes (tokens), ascending. */
  batches: number[];
  /** Forward-pass seconds per weight byte (every matrix, classifier included) at each batch size. */
  secondsPerWeightByte: number[];
  /** Decode attention, 4 · headDim FLOPs per (query head, key) pair. */
  attentionFlopsPerS: number;
  /** Sampling one token, per vocabulary entry. */
  samplingSecondsPerLogit: number;
}

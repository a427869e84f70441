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

/** Seconds, all of them; "pair" is a (query, key) pair of the attention, over every layer and head. */
export interface MeasuredRates {
  weightDtype: WeightDtype;
  /** Batch sizes (tokens), ascending. */
  batches: number[];
  /**
   * The forward pass without its attention and classifier, per byte of the layers' weights, at each batch size
   * (tokens): what the engine waits for, thread hand-offs included.
   */
  secondsPerWeightByte: number[];
  /** The classifier, per byte of its weights, at each batch size (rows of logits). */
  classifierSecondsPerByte: number[];
  /**
   * Attention inside the forward pass, as the backend times it. Decodes (one query each) stream their K/V faster
   * the more of them run at once, so theirs is measured at each of `batches` decodes in a step: seconds once,
   * per (query, key) pair, and per key read from memory (a block the decodes share is read once: StepShape's
   * decodeKeys). Prefill chunks: once, per chunk token and per pair.
   */
  attention: {
    decodeStepSeconds: number[];
    decodePairSeconds: number[];
    decodeKeySeconds: number[];
    prefillStepSeconds: number;
    prefillTokenSeconds: number;
    prefillPairSeconds: number;
  };
  /** Sampling on the backend, greedy: once per step that samples, and per vocabulary entry of each row. */
  sampling: { stepSeconds: number; logitSeconds: number };
  /** The engine's own work in a serving step: once per step, and per scheduled request. */
  overhead: { stepSeconds: number; requestSeconds: number };
}

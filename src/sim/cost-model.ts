import type { SchedulerOutput } from "../core/scheduler-output.js";
import type { ModelConfig } from "../model/config.js";
import { forwardSeconds } from "./measured-rates.js";
import { matmulParameterCount, parameterCount } from "./model-profile.js";
import { kvBytesPerSequence, kvBytesPerToken, weightBytesPerParam } from "./plan.js";
import type { HardwareProfile, KvDtype, WeightDtype } from "./types.js";

/**
 * Time of one engine step on given hardware, by the roofline:
 * max(bytes moved ÷ bandwidth, FLOPs ÷ peak) + a fixed per-step overhead.
 * Bytes: every weight once (one forward pass serves the whole batch) plus each scheduled request's K/V
 * over its context (a sliding-window layer's over its window). FLOPs: 2 per weight per scheduled token (the
 * classifier only for tokens that sample) plus attention, 4 × qDim per layer per (query, key) pair, causal
 * within the new tokens.
 *
 * A profile with measured rates (cpu-local) adds the parts up instead, each at its measured speed: the
 * weights by the forward pass's cost curve at this step's token count + attention FLOPs ÷ attention rate
 * + sampling + overhead.
 */
export class CostModel {
  readonly weightBytes: number;
  readonly kvBytesPerToken: number;
  private readonly bytesPerParam: number;
  private readonly bodyParams: number;
  private readonly classifierParams: number;
  private readonly vocabSize: number;
  private readonly attentionFlopsPerPair: number;
  private readonly peakFlops: number;

  constructor(
    private readonly config: ModelConfig,
    weightDtype: WeightDtype,
    private readonly kvDtype: KvDtype,
    readonly hardware: HardwareProfile,
  ) {
    this.bytesPerParam = weightBytesPerParam[weightDtype];
    this.weightBytes = parameterCount(config) * this.bytesPerParam;
    this.kvBytesPerToken = kvBytesPerToken(config, kvDtype);
    this.vocabSize = config.vocabSize;
    this.classifierParams = config.vocabSize * config.dim;
    this.bodyParams = matmulParameterCount(config) - this.classifierParams;
    this.attentionFlopsPerPair = 4 * config.nLayers * config.nHeads * config.headDim;
    this.peakFlops = weightDtype === "fp32" ? hardware.peakFlops.fp32 : hardware.peakFlops.fp16;
  }

  stepTime(output: SchedulerOutput): number {
    let kvBytes = 0;
    let pairs = 0;
    let sampling = 0;
    for (const s of output.scheduled) {
      const context = s.numComputedTokens + s.numNewTokens;
      kvBytes += kvBytesPerSequence(this.config, this.kvDtype, context);
      // New token j (0-based) attends to numComputedTokens + j + 1 keys.
      pairs += s.numNewTokens * s.numComputedTokens + (s.numNewTokens * (s.numNewTokens + 1)) / 2;
      if (s.samples) sampling++;
    }
    const { bandwidthBytesPerS: bandwidth, measuredRates: rates, stepOverheadS } = this.hardware;
    const attentionFlops = this.attentionFlopsPerPair * pairs;
    if (rates) {
      const weightTime =
        forwardSeconds(rates, this.bodyParams * this.bytesPerParam, output.numScheduledTokens) +
        forwardSeconds(rates, this.classifierParams * this.bytesPerParam, sampling);
      const samplingTime = sampling * this.vocabSize * rates.samplingSecondsPerLogit;
      return weightTime + attentionFlops / rates.attentionFlopsPerS + samplingTime + stepOverheadS;
    }
    const flops =
      2 * this.bodyParams * output.numScheduledTokens + 2 * this.classifierParams * sampling + attentionFlops;
    const memoryTime = (this.weightBytes + kvBytes) / bandwidth;
    return Math.max(memoryTime, flops / this.peakFlops) + stepOverheadS;
  }
}

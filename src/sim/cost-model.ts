import { type SchedulerOutput, type StepShape, stepShape } from "../core/scheduler-output.js";
import { minStepBudget, type StepRates } from "../engine/step-budget.js";
import type { ModelConfig } from "../model/config.js";
import { classifierSeconds, decodeAttentionSeconds, forwardSeconds } from "./measured-rates.js";
import { matmulParameterCount, parameterCount } from "./model-profile.js";
import { kvBytesPerSequence, kvBytesPerToken, weightBytesPerParam } from "./plan.js";
import { type StepTerms, totalTime } from "./step-terms.js";
import type { HardwareProfile, KvDtype, MeasuredRates, WeightDtype } from "./types.js";

/** One request with one logits row and nothing else, for stepRates' shapes. */
const oneRequest: StepShape = {
  contexts: [],
  numRequests: 1,
  numTokens: 0,
  numSampled: 1,
  decodeRequests: 0,
  decodePairs: 0,
  decodeKeys: 0,
  prefillTokens: 0,
  prefillPairs: 0,
};

/**
 * Time of one engine step on given hardware, by the roofline:
 * max(bytes moved ÷ bandwidth, FLOPs ÷ peak) + a fixed per-step overhead.
 * Bytes: every weight once (one forward pass serves the whole batch) plus each scheduled request's K/V
 * over its context (a sliding-window layer's over its window). FLOPs: 2 per weight per scheduled token (the
 * classifier only for tokens that sample) plus attention, 4 × qDim per layer per (query, key) pair. The roofline
 * prices attention and sampling inside that one forward term.
 *
 * A profile with measured rates (cpu-local) adds the terms up instead, each at what this machine measured
 * (measured-rates.ts): the weights by the forward pass's cost curve at this step's token count, attention by
 * its decode costs at this step's number of decodes and its prefill costs per token and pair, sampling per row,
 * and the engine's overhead per step and per request. A step's shape comes from the scheduler's output and the
 * engine's block size (which blocks its decodes share).
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
    private readonly blockSize: number,
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
    return totalTime(this.stepTerms(stepShape(output, this.blockSize)));
  }

  /**
   * The StepRates `vellum serve` measures at startup (step-rates.ts), priced instead: the forward pass (attention
   * included) of a minStepBudget-token prefill chunk at position 1, and of one decode after it, each with one
   * logits row.
   */
  stepRates(): StepRates {
    const chunk = minStepBudget;
    const forwardOf = (shape: StepShape) => {
      const t = this.stepTerms(shape);
      return t.forward + t.attention;
    };
    const prefill = forwardOf({
      ...oneRequest,
      contexts: [1 + chunk],
      numTokens: chunk,
      prefillTokens: chunk,
      prefillPairs: chunk + (chunk * (chunk + 1)) / 2,
    });
    const decode = forwardOf({
      ...oneRequest,
      contexts: [chunk + 2],
      numTokens: 1,
      decodeRequests: 1,
      decodePairs: chunk + 2,
      decodeKeys: chunk + 2,
    });
    return { decodeStepSeconds: decode, prefillTokenSeconds: prefill / chunk };
  }

  stepTerms(shape: StepShape): StepTerms {
    const rates = this.hardware.measuredRates;
    return rates ? this.measuredTerms(shape, rates) : this.rooflineTerms(shape);
  }

  private measuredTerms(s: StepShape, rates: MeasuredRates): StepTerms {
    const { attention: a, sampling, overhead } = rates;
    return {
      forward:
        forwardSeconds(rates, this.bodyParams * this.bytesPerParam, s.numTokens) +
        classifierSeconds(rates, this.classifierParams * this.bytesPerParam, s.numSampled),
      attention:
        decodeAttentionSeconds(rates.batches, a, s) +
        (s.prefillTokens === 0
          ? 0
          : a.prefillStepSeconds +
            s.prefillTokens * a.prefillTokenSeconds +
            s.prefillPairs * a.prefillPairSeconds),
      sampling:
        s.numSampled === 0 ? 0 : sampling.stepSeconds + s.numSampled * this.vocabSize * sampling.logitSeconds,
      overhead: overhead.stepSeconds + s.numRequests * overhead.requestSeconds,
    };
  }

  private rooflineTerms(s: StepShape): StepTerms {
    const kvBytes = s.contexts.reduce((sum, c) => sum + kvBytesPerSequence(this.config, this.kvDtype, c), 0);
    const flops =
      2 * this.bodyParams * s.numTokens +
      2 * this.classifierParams * s.numSampled +
      this.attentionFlopsPerPair * (s.decodePairs + s.prefillPairs);
    const memoryTime = (this.weightBytes + kvBytes) / this.hardware.bandwidthBytesPerS;
    return {
      forward: Math.max(memoryTime, flops / this.peakFlops),
      attention: 0,
      sampling: 0,
      overhead: this.hardware.stepOverheadS,
    };
  }
}

import type { Request } from "../core/request.js";
import type { StepShape } from "../core/scheduler-output.js";

export type FinishReason = "stop" | "length" | "abort";

/** One engine step, as /metrics, logs and benchmarks read it. Times in seconds. */
export interface StepStats {
  time: number;
  /** Wall time of the step: schedule + forward + sampling + update. */
  duration: number;
  /** Of which the forward pass and sampling (ModelRunner's RunnerTimes); the rest is the step's overhead. */
  forwardSeconds: number;
  sampleSeconds: number;
  /** The forward pass's attention and its classifier, as the backend timed them (0 where it does not). */
  attentionSeconds: number;
  classifierSeconds: number;
  /** What the step's cost depends on: its requests, tokens, samples and attention pairs. */
  shape: StepShape;
  numRunning: number;
  numWaiting: number;
  /** Requests preempted in this step. */
  numPreempted: number;
  numScheduledTokens: number;
  numPrefillTokens: number;
  numDecodeTokens: number;
  kvCacheUsage: number;
  /** Prefix-cache lookups in this step, in tokens (requests resuming after preemption not counted). */
  prefixCacheQueries: number;
  prefixCacheHits: number;
}

/** One finished request's latencies (seconds), the standard definitions vLLM's benchmarks use. */
export interface RequestMetrics {
  requestId: string;
  finishReason: FinishReason;
  numPromptTokens: number;
  numGenerationTokens: number;
  /** Prompt tokens served from the prefix cache at first admission. */
  numCachedTokens: number;
  /** The request's max_tokens. */
  maxTokens: number;
  /** Arrival to first scheduled. */
  queueTime: number;
  /** First scheduled to first token (vLLM's prefill time). */
  prefillTime: number;
  /** First token to last token (vLLM's decode time). */
  decodeTime: number;
  /** First scheduled to last token: prefill + decode (vLLM's inference time). */
  inferenceTime: number;
  /** Arrival to first token. */
  ttft: number;
  /** (E2E − TTFT) / (generated tokens − 1); 0 for a single token. */
  tpot: number;
  /** Gaps between consecutive tokens. */
  interTokenLatencies: number[];
  /** Arrival to finish. */
  e2e: number;
}

/** One finished generate() call: its n completions together (vLLM's parent request). */
export interface GenerationMetrics {
  /** The request's n. */
  n: number;
  /** The most tokens any of its completions generated. */
  maxNumGenerationTokens: number;
}

export function finishReasonOf(request: Request): FinishReason {
  switch (request.status) {
    case "FINISHED_STOPPED":
      return "stop";
    case "FINISHED_LENGTH":
      return "length";
    default:
      return "abort";
  }
}

export function requestMetrics(request: Request): RequestMetrics {
  const t = request.timestamps;
  const finished = t.finished ?? t.arrival;
  const firstScheduled = t.firstScheduled ?? finished;
  const firstToken = t.firstToken ?? finished;
  const lastToken = t.tokens.at(-1) ?? finished;
  const n = request.outputTokenIds.length;
  return {
    requestId: request.id,
    finishReason: finishReasonOf(request),
    numPromptTokens: request.promptTokenIds.length,
    numGenerationTokens: n,
    numCachedTokens: request.numCachedTokens,
    maxTokens: request.samplingParams.maxTokens,
    queueTime: firstScheduled - t.arrival,
    prefillTime: firstToken - firstScheduled,
    decodeTime: lastToken - firstToken,
    inferenceTime: lastToken - firstScheduled,
    ttft: firstToken - t.arrival,
    tpot: n > 1 ? (finished - firstToken) / (n - 1) : 0,
    interTokenLatencies: t.tokens.slice(1).map((time, i) => time - t.tokens[i]),
    e2e: finished - t.arrival,
  };
}

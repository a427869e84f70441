import type { Request } from "./request.js";

/** One request's share of a step. */
export interface ScheduledRequest {
  request: Request;
  /** Tokens of the request computed before this step (their K/V are in the cache). */
  numComputedTokens: number;
  /** Tokens computed this step: a prefill chunk, or 1 for a decode. */
  numNewTokens: number;
  /** The request's whole block table in each KV cache group after this step's allocation. */
  blockIds: readonly (readonly number[])[];
  /** True when this step reaches the end of the request's tokens, so a token is sampled. */
  samples: boolean;
}

/** What one scheduling pass decided: the batch for the model runner, and what changed. */
export interface SchedulerOutput {
  /** Running requests first (in running order), then newly admitted ones. */
  scheduled: ScheduledRequest[];
  numScheduledTokens: number;
  numPrefillTokens: number;
  numDecodeTokens: number;
  /** Requests preempted this step (blocks freed, back to waiting). */
  preemptedIds: string[];
  /** Requests that finished or were aborted since the previous step (the runner drops their state). */
  finishedIds: string[];
}

/** Counts after a step: the one source of /metrics, logs and benchmarks. */
export interface SchedulerStats {
  numRunning: number;
  numWaiting: number;
  numPreemptedTotal: number;
  kvCacheUsage: number;
}

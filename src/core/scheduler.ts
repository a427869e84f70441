import type { KVCacheManager } from "./kv-cache-manager.js";
import { isFinished, type Request, type RequestStatus } from "./request.js";
import { RequestQueue, type SchedulingPolicy } from "./request-queue.js";
import type { ScheduledRequest, SchedulerOutput, SchedulerStats } from "./scheduler-output.js";

export interface SchedulerConfig {
  /** Most requests running at once. */
  maxNumSeqs: number;
  /** Token budget of one step, shared by prefill chunks and decodes. */
  maxNumBatchedTokens: number;
  maxModelLen: number;
  /** Caps one request's prefill chunk per step so a long prompt cannot take the whole budget; 0 = off. */
  longPrefillTokenThreshold: number;
  /**
   * Caps the prefill tokens of one step, all requests together, so that however many requests wait a step's
   * prefill costs a bounded time while decodes keep the rest of the budget (serve sets it from measured rates);
   * 0 or absent = off.
   */
  maxPrefillTokensPerStep?: number;
  policy: SchedulingPolicy;
  /** static: a batch admits new requests only until it starts decoding, then runs until all of it has finished. */
  batching: "continuous" | "static";
}

/** A request that can never run (too long for the model or for the whole KV cache). */
export class AdmissionError extends Error {}

/**
 * Iteration-level scheduling as in vLLM v1: no prefill or decode phases, just one token budget per step.
 * Each request has numComputedTokens; every step hands out budget so that it catches up with the
 * request's tokens. That one rule gives chunked prefill, prefix-cache skips, decode (1 token) and resume
 * after preemption. Pure: time comes from the injected clock, blocks from the KVCacheManager.
 */
export class Scheduler {
  readonly waiting: RequestQueue;
  readonly running: Request[] = [];
  private readonly requests = new Map<string, Request>();
  private finishedIds: string[] = [];
  private numPreemptedTotal = 0;
  /** static batching: the current batch has produced a token, so it admits no one until it ends. */
  private batchDecoding = false;

  constructor(
    readonly config: SchedulerConfig,
    readonly kvCacheManager: KVCacheManager,
    private readonly clock: () => number,
  ) {
    this.waiting = new RequestQueue(config.policy);
  }

  /** Queues a request; throws AdmissionError for one that could never run. */
  addRequest(request: Request): void {
    const error = this.kvCacheManager.admissionError(
      request.promptTokenIds.length,
      request.samplingParams.maxTokens,
    );
    if (error) throw new AdmissionError(error);
    if (this.requests.has(request.id)) throw new AdmissionError(`request id ${request.id} is already in use`);
    this.requests.set(request.id, request);
    this.waiting.push(request);
  }

  get hasUnfinishedRequests(): boolean {
    return this.requests.size > 0;
  }

  schedule(): SchedulerOutput {
    const c = this.config;
    if (this.running.length === 0) this.batchDecoding = false;
    let budget = c.maxNumBatchedTokens;
    let prefillBudget = c.maxPrefillTokensPerStep || Number.POSITIVE_INFINITY;
    const granted = new Map<Request, number>();
    const preemptedIds: string[] = [];

    // Running requests first, in running order: decodes and unfinished prefill chunks. When blocks run
    // out, the last running request is preempted (the latest admitted, or the least important): it comes
    // after every request scheduled so far, so no block allocated this step is ever taken back.
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const request = this.running[i];
      const wanted = this.tokensWanted(request);
      const n = Math.min(wanted, budget, wanted > 1 ? prefillBudget : 1);
      if (n === 0) continue; // a prefill chunk, and this step's prefill budget is spent
      let allocated = this.kvCacheManager.allocateSlots(request, n);
      while (allocated === null && this.running.length - 1 > i) {
        preemptedIds.push(this.preempt(this.running.pop() as Request));
        allocated = this.kvCacheManager.allocateSlots(request, n);
      }
      if (allocated === null) {
        // The request is the last one left to try: it waits for others to finish.
        preemptedIds.push(this.preempt(this.running.pop() as Request));
        break;
      }
      granted.set(request, n);
      budget -= n;
      if (wanted > 1) prefillBudget -= n;
    }

    // Then waiting requests, unless this step had to preempt (admitting now would only thrash).
    const admitting = preemptedIds.length === 0 && (c.batching === "continuous" || !this.batchDecoding);
    while (admitting && budget > 0 && this.running.length < c.maxNumSeqs) {
      const request = this.waiting.peek();
      if (!request) break;
      const computed = this.kvCacheManager.getComputedBlocks(request);
      const wanted = this.tokensWanted(request, computed.numComputedTokens);
      const n = Math.min(wanted, budget, wanted > 1 ? prefillBudget : 1);
      if (n === 0) break; // this step's prefill budget is spent
      if (this.kvCacheManager.allocateSlots(request, n, computed) === null) break; // no head-of-line skipping
      this.waiting.pop();
      this.addRunning(request);
      request.status = "RUNNING";
      request.numComputedTokens = computed.numComputedTokens;
      if (request.numPreemptions === 0) request.numCachedTokens = computed.numComputedTokens;
      request.timestamps.firstScheduled ??= this.clock();
      granted.set(request, n);
      budget -= n;
      if (wanted > 1) prefillBudget -= n;
    }

    return this.makeOutput(granted, preemptedIds);
  }

  /**
   * Applies the tokens sampled in the step: appends them, checks stop conditions, frees finished
   * requests. `sampled` maps request id → token for every scheduled request with `samples`.
   * Returns the requests that got a token (finished ones included, with their final status).
   */
  updateFromOutput(output: SchedulerOutput, sampled: ReadonlyMap<string, number>): Request[] {
    const now = this.clock();
    const updated: Request[] = [];
    for (const { request, samples } of output.scheduled) {
      if (!samples || isFinished(request.status) || !this.requests.has(request.id)) continue;
      const token = sampled.get(request.id);
      if (token === undefined) throw new Error(`no token sampled for request ${request.id}`);
      request.appendOutputTokenIds([token]);
      request.timestamps.firstToken ??= now;
      request.timestamps.tokens.push(now);
      this.batchDecoding = true;
      const status = this.stopStatus(request);
      if (status) this.finish(request, status);
      updated.push(request);
    }
    return updated;
  }

  /** Ends requests from outside (client gone, stop string found): frees their blocks now. */
  finishRequests(ids: Iterable<string>, status: RequestStatus): void {
    for (const id of ids) {
      const request = this.requests.get(id);
      if (request) this.finish(request, status);
    }
  }

  stats(): SchedulerStats {
    return {
      numRunning: this.running.length,
      numWaiting: this.waiting.length,
      numPreemptedTotal: this.numPreemptedTotal,
      kvCacheUsage: this.kvCacheManager.usage,
    };
  }

  /** Tokens a request still needs computed, capped by the long-prefill threshold. */
  private tokensWanted(request: Request, numComputed = request.numComputedTokens): number {
    const n = request.numTokens - numComputed;
    const cap = this.config.longPrefillTokenThreshold;
    return cap > 0 ? Math.min(n, cap) : n;
  }

  /**
   * fcfs: running stays in admission order. priority: in (priority, arrival) order, so that the most
   * important requests get the budget first and the one to preempt is always the last.
   */
  private addRunning(request: Request): void {
    let i = this.running.length;
    if (this.config.policy === "priority") {
      while (i > 0 && ranksBelow(this.running[i - 1], request)) i--;
    }
    this.running.splice(i, 0, request);
  }

  /** Recompute-style preemption: drop the request's blocks and requeue it; it restarts from token 0. */
  private preempt(request: Request): string {
    this.kvCacheManager.free(request);
    request.status = "PREEMPTED";
    request.numComputedTokens = 0;
    request.numPreemptions++;
    this.numPreemptedTotal++;
    this.waiting.pushPreempted(request);
    return request.id;
  }

  private stopStatus(request: Request): RequestStatus | undefined {
    const p = request.samplingParams;
    const numOutput = request.outputTokenIds.length;
    const last = request.outputTokenIds[numOutput - 1];
    if (numOutput >= p.minTokens) {
      if (!p.ignoreEos && request.eosTokenIds.includes(last)) return "FINISHED_STOPPED";
      if (p.stopTokenIds.includes(last)) return "FINISHED_STOPPED";
    }
    if (numOutput >= p.maxTokens || request.numTokens >= this.config.maxModelLen) return "FINISHED_LENGTH";
    return undefined;
  }

  private finish(request: Request, status: RequestStatus): void {
    if (isFinished(request.status)) return;
    if (request.status === "RUNNING") this.running.splice(this.running.indexOf(request), 1);
    else this.waiting.remove(request);
    request.status = status;
    request.timestamps.finished = this.clock();
    this.kvCacheManager.free(request);
    this.requests.delete(request.id);
    this.finishedIds.push(request.id);
  }

  private makeOutput(granted: Map<Request, number>, preemptedIds: string[]): SchedulerOutput {
    const scheduled: ScheduledRequest[] = [];
    let numPrefillTokens = 0;
    let numDecodeTokens = 0;
    for (const [request, n] of granted) {
      const numComputedTokens = request.numComputedTokens;
      const isDecode =
        n === 1 && request.outputTokenIds.length > 0 && numComputedTokens === request.numTokens - 1;
      if (isDecode) numDecodeTokens++;
      else numPrefillTokens += n;
      // Advance before the step runs, so the next schedule() sees this chunk as computed.
      request.numComputedTokens += n;
      scheduled.push({
        request,
        numComputedTokens,
        numNewTokens: n,
        blockIds: this.kvCacheManager.getBlockIds(request.id),
        samples: request.numComputedTokens === request.numTokens,
      });
    }
    const finishedIds = this.finishedIds;
    this.finishedIds = [];
    return {
      scheduled,
      numScheduledTokens: numPrefillTokens + numDecodeTokens,
      numPrefillTokens,
      numDecodeTokens,
      preemptedIds,
      finishedIds,
    };
  }
}

/** Whether a runs after b under the priority policy: a larger priority value, or the same and a later arrival. */
function ranksBelow(a: Request, b: Request): boolean {
  return (
    a.priority > b.priority || (a.priority === b.priority && a.timestamps.arrival > b.timestamps.arrival)
  );
}

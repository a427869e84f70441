import { Request } from "../core/request.js";
import { samplingParams, type ValidSamplingParams } from "../core/sampling-params.js";
import type { SchedulerStats } from "../core/scheduler-output.js";
import type { Tokenizer } from "../model/tokenizer/tokenizer.js";
import type { EngineConfig } from "./engine-config.js";
import type { EngineCore } from "./engine-core.js";
import { type CompletionDelta, RequestOutputState } from "./output-processor.js";
import { type RequestMetrics, requestMetrics, type StepStats } from "./stats.js";

export interface GenerateOptions {
  /** Unique among live requests; generated when absent. */
  requestId?: string;
  /** Lower runs first under the `priority` policy. */
  priority?: number;
  /** Aborting it aborts the request and frees its KV blocks. */
  signal?: AbortSignal;
}

/** The deltas of one generate() call: all n completions, interleaved, until every one has finished. */
class OutputStream implements AsyncIterableIterator<CompletionDelta> {
  private readonly queue: CompletionDelta[] = [];
  private wake?: () => void;
  private error?: Error;
  private open: number;

  constructor(
    numCompletions: number,
    private readonly onClose: () => void,
  ) {
    this.open = numCompletions;
  }

  push(delta: CompletionDelta) {
    this.queue.push(delta);
    if (delta.finished) this.open--;
    this.wake?.();
  }

  fail(error: Error) {
    this.error = error;
    this.wake?.();
  }

  async next(): Promise<IteratorResult<CompletionDelta>> {
    while (this.queue.length === 0) {
      if (this.error) throw this.error;
      if (this.open === 0) return { done: true, value: undefined };
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
    return { done: false, value: this.queue.shift() as CompletionDelta };
  }

  /** The consumer stopped early (client gone): abort what is still running. */
  async return(): Promise<IteratorResult<CompletionDelta>> {
    if (this.open > 0) this.onClose();
    this.open = 0;
    this.queue.length = 0;
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

/**
 * The engine as callers use it: generate() returns a stream of deltas; the step loop runs while there is
 * work and sleeps when idle, yielding to the event loop between steps.
 */
export class AsyncEngine {
  private readonly states = new Map<string, { state: RequestOutputState; stream: OutputStream }>();
  private readonly children = new Map<string, string[]>();
  private loop?: Promise<void>;
  private nextId = 0;
  private readonly stepListeners: ((s: StepStats) => void)[] = [];
  private readonly finishListeners: ((m: RequestMetrics) => void)[] = [];

  constructor(
    readonly core: EngineCore,
    readonly tokenizer: Tokenizer,
    private readonly clock: () => number,
  ) {}

  get config(): EngineConfig {
    return this.core.config;
  }

  /** Longest sequence (prompt + output) in tokens. */
  get maxModelLen(): number {
    return this.config.maxModelLen;
  }

  /** Requests running and waiting, and KV cache usage, now. */
  stats(): SchedulerStats {
    return this.core.scheduler.stats();
  }

  onStep(listener: (s: StepStats) => void) {
    this.stepListeners.push(listener);
  }

  onRequestFinished(listener: (m: RequestMetrics) => void) {
    this.finishListeners.push(listener);
  }

  /**
   * Queues one prompt (n completions). Throws at once for a request that can never fit (AdmissionError), so
   * callers can answer 400 before streaming anything; `params` were validated where they entered.
   */
  generate(
    promptTokenIds: readonly number[],
    params: ValidSamplingParams,
    opts: GenerateOptions = {},
  ): AsyncIterableIterator<CompletionDelta> {
    const requestId = opts.requestId ?? `req-${this.nextId++}`;
    if (this.children.has(requestId)) throw new RangeError(`request id ${requestId} is already in use`);
    const arrival = this.clock();
    const requests = Array.from(
      { length: params.n },
      (_, i) =>
        new Request({
          id: params.n === 1 ? requestId : `${requestId}#${i}`,
          promptTokenIds,
          // Each completion samples on its own; a seed stays reproducible per completion.
          samplingParams:
            params.seed === undefined ? params : samplingParams({ ...params, seed: params.seed + i }),
          arrivalTime: arrival,
          priority: opts.priority,
          eosTokenIds: this.tokenizer.stopIds,
        }),
    );
    const stream = new OutputStream(requests.length, () => this.abort(requestId));
    for (const request of requests) this.core.addRequest(request); // throws AdmissionError before anything is stored
    const childIds = requests.map((r) => r.id);
    this.children.set(requestId, childIds);
    requests.forEach((request, i) => {
      this.states.set(request.id, {
        state: new RequestOutputState(this.tokenizer, request, requestId, i),
        stream,
      });
    });
    // A signal aborted before the call (client already gone) never fires its event again.
    // A late signal must not abort a newer request that reuses the id.
    const onAbort = () => {
      if (this.children.get(requestId) === childIds) this.abort(requestId);
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
    });
    return stream;
  }

  /** Aborts a request (all its completions): their KV blocks are freed now, their streams end with "abort". */
  abort(requestId: string): void {
    const ids = this.children.get(requestId) ?? [];
    this.core.abort(ids);
    for (const id of ids) {
      const entry = this.states.get(id);
      if (entry) this.finish(id, entry.stream, entry.state.aborted());
    }
  }

  /** Resolves once the step loop is idle. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  private async run(): Promise<void> {
    while (this.core.hasUnfinishedRequests) {
      let result: Awaited<ReturnType<EngineCore["step"]>>;
      try {
        result = await this.core.step();
      } catch (err) {
        this.failAll(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      for (const { request, sample } of result.updates) {
        const entry = this.states.get(request.id);
        if (!entry) continue;
        const { delta, stopString } = entry.state.update(sample);
        if (stopString !== undefined) this.core.abort([request.id], "FINISHED_STOPPED");
        if (delta.finished) this.finish(request.id, entry.stream, delta);
        else entry.stream.push(delta);
      }
      for (const listener of this.stepListeners) listener(result.stats);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private finish(childId: string, stream: OutputStream, delta: CompletionDelta) {
    const entry = this.states.get(childId);
    if (!entry) return;
    this.states.delete(childId);
    const metrics = requestMetrics(entry.state.request);
    metrics.finishReason = delta.finishReason ?? metrics.finishReason;
    delta.metrics = metrics;
    stream.push(delta);
    for (const listener of this.finishListeners) listener(metrics);
    const siblings = this.children.get(entry.state.parentId) ?? [];
    if (siblings.every((id) => !this.states.has(id))) this.children.delete(entry.state.parentId);
  }

  private failAll(error: Error) {
    const ids = [...this.states.keys()];
    this.core.abort(ids);
    for (const id of ids) this.states.get(id)?.stream.fail(error);
    this.states.clear();
    this.children.clear();
  }
}

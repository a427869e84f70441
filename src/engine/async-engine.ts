import { Request } from "../core/request.js";
import { samplingParams, type ValidSamplingParams } from "../core/sampling-params.js";
import type { SchedulerStats } from "../core/scheduler-output.js";
import type { Tokenizer } from "../model/tokenizer/tokenizer.js";
import type { EngineConfig } from "./engine-config.js";
import type { EngineCore, StepResult } from "./engine-core.js";
import { type CompletionDelta, RequestOutputState } from "./output-processor.js";
import { type GenerationMetrics, type RequestMetrics, requestMetrics, type StepStats } from "./stats.js";
import { StructuredOutputs } from "./structured-output/structured-outputs.js";

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

/** One completion (one engine request) and the stream its deltas go to. */
interface Completion {
  readonly state: RequestOutputState;
  readonly stream: OutputStream;
  readonly generation: Generation;
}

/** One generate() call: its n completions, how many are still open, whether its abort is queued. */
interface Generation {
  readonly id: string;
  readonly completions: Completion[];
  open: number;
  abortQueued: boolean;
}

/**
 * Completions aborted per turn of the event loop (about 10 µs each with the server's metrics and streams, so
 * about 5 ms a turn): a client that leaves a batch of thousands frees it over several turns, and /health and
 * the other streams keep being served meanwhile.
 */
const abortsPerTurn = 512;

/**
 * The engine as callers use it: generate() returns a stream of deltas; the step loop runs while there is
 * work and sleeps when idle, yielding to the event loop between steps.
 */
export class AsyncEngine {
  /** Live completions by engine request id. */
  private readonly completions = new Map<string, Completion>();
  /** Live generate() calls by request id. */
  private readonly generations = new Map<string, Generation>();
  /** Generations waiting to be aborted, read from `abortHead`. */
  private abortQueue: Generation[] = [];
  private abortHead = 0;
  /** Completions that may still be aborted in this turn; the turn ends at `abortTurn`'s setImmediate. */
  private abortBudget = 0;
  private abortTurn?: NodeJS.Immediate;
  private loop?: Promise<void>;
  private nextId = 0;
  private readonly stepListeners: ((s: StepStats) => void)[] = [];
  private readonly finishListeners: ((m: RequestMetrics) => void)[] = [];
  private readonly generationListeners: ((m: GenerationMetrics) => void)[] = [];
  /**
   * Compiles structured-output specs into grammars for `params.grammar`: callers compile before generate(),
   * so a bad spec is refused (an InputError) before anything is queued.
   */
  readonly structuredOutputs: StructuredOutputs;

  constructor(
    readonly core: EngineCore,
    readonly tokenizer: Tokenizer,
    /** The engine's clock, in seconds: every timestamp and stat it reports reads it. */
    readonly clock: () => number,
  ) {
    this.structuredOutputs = new StructuredOutputs(tokenizer, core.vocabSize);
  }

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

  /** Called once per generate() call, after the last of its n completions has finished. */
  onGenerationFinished(listener: (m: GenerationMetrics) => void) {
    this.generationListeners.push(listener);
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
    if (this.generations.has(requestId)) throw new RangeError(`request id ${requestId} is already in use`);
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
    const generation: Generation = { id: requestId, completions: [], open: params.n, abortQueued: false };
    const stream = new OutputStream(requests.length, () => this.queueAbort(generation));
    for (const request of requests) this.core.addRequest(request); // throws AdmissionError before anything is stored
    this.generations.set(requestId, generation);
    requests.forEach((request, i) => {
      const completion = {
        state: new RequestOutputState(this.tokenizer, request, requestId, i),
        stream,
        generation,
      };
      generation.completions.push(completion);
      this.completions.set(request.id, completion);
    });
    // A signal aborted before the call (client already gone) never fires its event again.
    if (opts.signal?.aborted) this.queueAbort(generation);
    else opts.signal?.addEventListener("abort", () => this.queueAbort(generation), { once: true });
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
    });
    return stream;
  }

  /**
   * Aborts a request (all its completions): their KV blocks are freed and their streams end with "abort",
   * at once unless thousands of completions are being aborted in this turn of the event loop (then in
   * the next turns).
   */
  abort(requestId: string): void {
    const generation = this.generations.get(requestId);
    if (generation) this.queueAbort(generation);
  }

  /** Resolves once the step loop is idle. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /**
   * Steps while there is work. A step's outputs are detokenized (which may stop a request) before the next step is
   * scheduled, and handed to the streams once that step's forward pass runs: the streams' work (JSON, socket
   * writes) then overlaps the forward pass instead of holding back its start.
   */
  private async run(): Promise<void> {
    let step: Promise<StepResult | Error> | undefined = this.startStep();
    while (step) {
      const result = await step;
      if (result instanceof Error) {
        this.failAll(result);
        return;
      }
      const deltas: [Completion, CompletionDelta][] = [];
      for (const { request, sample, promptLogprobs } of result.updates) {
        const completion = this.completions.get(request.id);
        if (!completion) continue;
        const { delta, stopString } = completion.state.update(sample, promptLogprobs);
        if (stopString !== undefined) this.core.abort([request.id], "FINISHED_STOPPED");
        deltas.push([completion, delta]);
      }
      step = this.core.hasUnfinishedRequests ? this.startStep() : undefined;
      for (const [completion, delta] of deltas) {
        if (delta.finished) this.finish(completion, delta);
        else completion.stream.push(delta);
      }
      for (const listener of this.stepListeners) listener(result.stats);
      await new Promise((resolve) => setImmediate(resolve));
      // Requests the streams' consumers added meanwhile.
      if (!step && this.core.hasUnfinishedRequests) step = this.startStep();
    }
  }

  /** The next step, its failure as a value: it is awaited only after a turn of the event loop. */
  private startStep(): Promise<StepResult | Error> {
    return this.core.step().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  }

  /**
   * A generation that is still open (and, through the identity check, not a newer one that reuses its id)
   * joins the abort queue, which is worked off at once within this turn's budget.
   */
  private queueAbort(generation: Generation): void {
    if (generation.abortQueued || this.generations.get(generation.id) !== generation) return;
    generation.abortQueued = true;
    this.abortQueue.push(generation);
    this.drainAborts();
  }

  /** Aborts queued generations until this turn's budget is spent; the next turn continues with a new one. */
  private drainAborts(): void {
    if (!this.abortTurn) {
      this.abortBudget = abortsPerTurn;
      this.abortTurn = setImmediate(() => {
        this.abortTurn = undefined;
        if (this.abortHead < this.abortQueue.length) this.drainAborts();
      });
    }
    while (this.abortBudget > 0 && this.abortHead < this.abortQueue.length) {
      const generation = this.abortQueue[this.abortHead++];
      const live = generation.completions.filter((c) => this.completions.get(c.state.request.id) === c);
      this.core.abort(live.map((c) => c.state.request.id));
      for (const completion of live) this.finish(completion, completion.state.aborted());
      this.abortBudget -= generation.completions.length;
    }
    if (this.abortHead === this.abortQueue.length) {
      this.abortQueue = [];
      this.abortHead = 0;
    }
  }

  private finish(completion: Completion, delta: CompletionDelta) {
    const id = completion.state.request.id;
    if (this.completions.get(id) !== completion) return;
    this.completions.delete(id);
    const metrics = requestMetrics(completion.state.request);
    metrics.finishReason = delta.finishReason ?? metrics.finishReason;
    delta.metrics = metrics;
    completion.stream.push(delta);
    for (const listener of this.finishListeners) listener(metrics);
    const generation = completion.generation;
    if (--generation.open > 0) return;
    this.generations.delete(generation.id);
    const lengths = generation.completions.map((c) => c.state.request.outputTokenIds.length);
    const whole = { n: lengths.length, maxNumGenerationTokens: Math.max(...lengths) };
    for (const listener of this.generationListeners) listener(whole);
  }

  private failAll(error: Error) {
    this.core.abort(this.completions.keys());
    for (const { stream } of this.completions.values()) stream.fail(error);
    this.completions.clear();
    this.generations.clear();
    this.abortQueue = [];
    this.abortHead = 0;
  }
}

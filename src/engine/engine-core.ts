import type { Backend } from "../backend/backend.js";
import { KVCacheManager } from "../core/kv-cache-manager.js";
import type { KvCacheEvent } from "../core/kv-events.js";
import type { Request, RequestStatus } from "../core/request.js";
import { Scheduler } from "../core/scheduler.js";
import { stepShape } from "../core/scheduler-output.js";
import { ModelRunner } from "../runner/model-runner.js";
import type { PromptTokenLogprob } from "../runner/prompt-logprobs.js";
import type { SampledToken } from "../runner/sampler.js";
import type { EngineConfig } from "./engine-config.js";
import type { StepStats } from "./stats.js";

export interface StepResult {
  /**
   * Requests that got a token this step (finished ones with their final status), with that token's sample, and
   * with the first token the prompt's log-probs of a request that asked for them.
   */
  updates: { request: Request; sample: SampledToken; promptLogprobs?: PromptTokenLogprob[] }[];
  stats: StepStats;
}

/**
 * One engine step = schedule → one forward pass over all scheduled requests → sample → update.
 * Owns the Scheduler, the KVCacheManager and the ModelRunner; knows nothing of streams or HTTP.
 */
export class EngineCore {
  readonly scheduler: Scheduler;
  readonly kvCacheManager: KVCacheManager;
  private readonly runner: ModelRunner;
  /** Tokens the backend computed for prompts (prefill and recompute) since start: what prefix caching saves. */
  numPrefillTokensComputed = 0;
  /** KV cache events of the step being scheduled. */
  private kvEvents: KvCacheEvent[] = [];

  constructor(
    readonly backend: Backend,
    /** Rows of the logits. */
    readonly vocabSize: number,
    readonly config: EngineConfig,
    private readonly clock: () => number,
    /** Given, after each step's scheduling, the KV cache events it caused (none: no call). */
    private readonly onKvEvents?: (events: KvCacheEvent[]) => void,
  ) {
    this.kvCacheManager = new KVCacheManager({
      numBlocks: config.numBlocks,
      blockSize: config.blockSize,
      maxModelLen: config.maxModelLen,
      enablePrefixCaching: config.enablePrefixCaching,
      allocation: config.kvAllocation,
      groupWindows: config.kvCacheGroups.map((g) => g.window),
      maxChunkTokens: config.maxNumBatchedTokens,
      onKvEvent: onKvEvents && ((event) => this.kvEvents.push(event)),
    });
    this.scheduler = new Scheduler(config, this.kvCacheManager, clock);
    backend.initKvCache({
      numBlocks: config.numBlocks,
      blockSize: config.blockSize,
      dtype: config.kvCacheDtype,
      groups: config.kvCacheGroups,
    });
    this.runner = new ModelRunner(backend, config.blockSize, vocabSize);
  }

  addRequest(request: Request): void {
    this.scheduler.addRequest(request);
  }

  abort(ids: Iterable<string>, status: RequestStatus = "FINISHED_ABORTED"): void {
    this.scheduler.finishRequests(ids, status);
  }

  get hasUnfinishedRequests(): boolean {
    return this.scheduler.hasUnfinishedRequests;
  }

  async step(): Promise<StepResult> {
    const started = this.clock();
    const output = this.scheduler.schedule();
    if (this.kvEvents.length > 0) {
      this.onKvEvents?.(this.kvEvents);
      this.kvEvents = [];
    }
    const { sampled, promptLogprobs, times } = await this.runner.execute(output);
    const tokens = new Map([...sampled].map(([id, s]) => [id, s.tokenId]));
    const updated = this.scheduler.updateFromOutput(output, tokens);
    this.numPrefillTokensComputed += output.numPrefillTokens;

    const prefix = this.kvCacheManager.prefixCacheStats;
    this.kvCacheManager.resetPrefixCacheStats();
    const s = this.scheduler.stats();
    const now = this.clock();
    return {
      updates: updated.map((request) => ({
        request,
        sample: sampled.get(request.id) as SampledToken,
        promptLogprobs: promptLogprobs.get(request.id),
      })),
      stats: {
        time: now,
        duration: now - started,
        forwardSeconds: times.forwardSeconds,
        sampleSeconds: times.sampleSeconds,
        attentionSeconds: times.backend?.attentionSeconds ?? 0,
        classifierSeconds: times.backend?.classifierSeconds ?? 0,
        shape: stepShape(output, this.config.blockSize),
        numRunning: s.numRunning,
        numWaiting: s.numWaiting,
        numPreempted: output.preemptedIds.length,
        numScheduledTokens: output.numScheduledTokens,
        numPrefillTokens: output.numPrefillTokens,
        numDecodeTokens: output.numDecodeTokens,
        kvCacheUsage: s.kvCacheUsage,
        prefixCacheQueries: prefix.queries,
        prefixCacheHits: prefix.hits,
      },
    };
  }
}

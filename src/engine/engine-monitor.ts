import { NULL_BLOCK } from "../core/block-pool.js";
import type { Request } from "../core/request.js";
import type { AsyncEngine } from "./async-engine.js";
import {
  type BlockMap,
  type EngineSnapshot,
  EVICTABLE,
  type FinishedRecord,
  FREE,
  type RequestView,
  type SnapshotCursor,
  type StepRecord,
} from "./engine-snapshot.js";
import { RecordRing } from "./record-ring.js";

/** Steps and finished completions kept for readers: a minute or more of history at the demo model's pace. */
const ringCapacity = 4096;
/** Waiting and preempted requests listed by name in a snapshot (all are counted). */
const queueListLimit = 64;

/**
 * A read-only window on a running engine for the web page. Every step and finished completion is recorded in a
 * fixed-size ring (O(1), no work that grows with the load); snapshot() reads the KV cache and the queues only
 * when a reader asks, between steps, when the scheduler's state is whole.
 */
export class EngineMonitor {
  private readonly steps = new RecordRing<StepRecord>(ringCapacity, 3);
  private readonly finished = new RecordRing<FinishedRecord>(ringCapacity, 4);

  constructor(private readonly engine: AsyncEngine) {
    engine.onStep((s) => this.steps.push([s.time, s.numPrefillTokens, s.numDecodeTokens]));
    engine.onRequestFinished((m) =>
      this.finished.push([engine.clock(), m.ttft, m.tpot, m.numGenerationTokens]),
    );
  }

  /** The engine now, with the steps and finished completions from `since` on (all retained ones by default). */
  snapshot(since: SnapshotCursor = { steps: 0, finished: 0 }): EngineSnapshot {
    const { config, scheduler } = this.engine.core;
    const owners = new Int32Array(this.engine.core.kvCacheManager.blockPool.numBlocks).fill(FREE);
    const running = scheduler.running.map((request, index) => this.requestView(request, owners, index));
    const waiting: RequestView[] = [];
    const preempted: RequestView[] = [];
    let numPreempted = 0;
    for (const request of scheduler.waiting) {
      const list = request.status === "PREEMPTED" ? preempted : waiting;
      if (request.status === "PREEMPTED") numPreempted++;
      if (list.length < queueListLimit) list.push(this.requestView(request));
    }
    return {
      time: this.engine.clock(),
      config: {
        blockSize: config.blockSize,
        maxNumBatchedTokens: config.maxNumBatchedTokens,
        maxNumSeqs: config.maxNumSeqs,
        maxModelLen: config.maxModelLen,
      },
      blocks: this.blockMap(owners),
      running,
      waiting,
      numWaiting: scheduler.waiting.length - numPreempted,
      preempted,
      numPreempted,
      steps: this.steps.since(since.steps),
      finished: this.finished.since(since.finished),
    };
  }

  /** A request as the queues show it; with `owners`, its blocks are marked there as held by running[index]. */
  private requestView(request: Request, owners?: Int32Array, index = 0): RequestView {
    let blocks = 0;
    for (const table of this.engine.core.kvCacheManager.getBlockIds(request.id)) {
      for (const id of table) {
        if (id === NULL_BLOCK) continue;
        blocks++;
        if (owners && owners[id] === FREE) owners[id] = index;
      }
    }
    return {
      id: request.id,
      promptTokens: request.promptTokenIds.length,
      outputTokens: request.outputTokenIds.length,
      computedTokens: request.numComputedTokens,
      blocks,
      preemptions: request.numPreemptions,
    };
  }

  /** The usable blocks' owners, run-length encoded, with free cached blocks told apart and shared ones listed. */
  private blockMap(owners: Int32Array): BlockMap {
    const pool = this.engine.core.kvCacheManager.blockPool;
    const runs: number[] = [];
    const shared: [number, number][] = [];
    for (let id = NULL_BLOCK + 1; id < pool.numBlocks; id++) {
      if (owners[id] === FREE && pool.blockHash(id) !== undefined) owners[id] = EVICTABLE;
      if (pool.refCount(id) > 1) shared.push([id, pool.refCount(id)]);
      const last = runs.length - 2;
      if (last >= 0 && runs[last] === owners[id]) runs[last + 1]++;
      else runs.push(owners[id], 1);
    }
    return { numBlocks: pool.numUsableBlocks, owners: runs, shared };
  }
}

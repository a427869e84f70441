/**
 * What the web page's engine view receives, about ten times a second: the KV cache's blocks, the queues, and the
 * steps and finished requests since the previous snapshot. Plain JSON with no imports, so that the browser code
 * (web/) can import these types too. Times are seconds on the engine's clock.
 */

/** One engine step: when it ended, and the tokens it computed of each kind. */
export type StepRecord = [time: number, prefillTokens: number, decodeTokens: number];

/** One finished completion: when it finished, its time to first token and mean time per output token. */
export type FinishedRecord = [time: number, ttft: number, tpot: number, generationTokens: number];

/** Rows of a ring buffer after a cursor: `first` is the sequence number of rows[0]; `next` the cursor to pass next. */
export interface RingRows<Row> {
  first: number;
  next: number;
  rows: Row[];
}

export interface RequestView {
  id: string;
  promptTokens: number;
  outputTokens: number;
  /** Tokens whose K/V are in the cache (or being written this step). */
  computedTokens: number;
  /** Blocks the request holds, all KV cache groups together. */
  blocks: number;
  preemptions: number;
}

/** A block that is not held by any running request. */
export const FREE = -1;
/** A free block that still holds a cached prefix: a prefix hit can take it back until it is evicted. */
export const EVICTABLE = -2;

export interface BlockMap {
  /** Usable blocks (ids 1 … numBlocks − 1; block 0 is the null block). */
  numBlocks: number;
  /**
   * Per block, in id order, run-length encoded as [value, count, value, count, …]: the index in `running` of the
   * first request that holds it, or FREE, or EVICTABLE.
   */
  owners: number[];
  /** [block id, ref count] of each block held by more than one request (shared through the prefix cache). */
  shared: [number, number][];
}

export interface EngineSnapshot {
  time: number;
  config: { blockSize: number; maxNumBatchedTokens: number; maxNumSeqs: number; maxModelLen: number };
  blocks: BlockMap;
  /** The running batch, in running order. */
  running: RequestView[];
  /** The first waiting requests (never run yet; queueListLimit in engine-monitor.ts) and their number. */
  waiting: RequestView[];
  numWaiting: number;
  /** The first preempted requests (blocks freed, waiting to be recomputed) and their number. */
  preempted: RequestView[];
  numPreempted: number;
  steps: RingRows<StepRecord>;
  finished: RingRows<FinishedRecord>;
}

/** Where a subscriber's previous snapshot left off in the step and finished-request rings. */
export interface SnapshotCursor {
  steps: number;
  finished: number;
}

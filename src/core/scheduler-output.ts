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

/**
 * What a step's cost depends on, beyond its token count: how many rows it samples and how much attention it
 * does. A request with one new token is a decode (one query per sequence: the attention kernel streams its
 * K/V for that query alone); a longer chunk is a prefill (its queries share each K/V read). Pairs are (query,
 * key) pairs: new token j (0-based) of a request attends to numComputedTokens + j + 1 keys. Decodes that share
 * cache blocks (a common prefix) read each shared key for all of them at once, from cache after the first.
 */
export interface StepShape {
  /** Each scheduled request's context after the step: the keys its last new token attends to. */
  contexts: number[];
  numRequests: number;
  numTokens: number;
  numSampled: number;
  decodeRequests: number;
  decodePairs: number;
  /** The keys the decodes attend to, each cache block (of the first KV cache group) counted once. */
  decodeKeys: number;
  prefillTokens: number;
  prefillPairs: number;
}

/**
 * The block ids one stepShape call has counted. Each call takes a new mark instead of clearing the array: a
 * Set<number> cost ~1 ms at 64 decodes of 2,000 tokens, in every step the engine runs.
 */
class BlockMarks {
  private marks = new Uint32Array(1024);
  private mark = 0;

  /** Starts a call: no block counted yet. */
  start(): void {
    this.mark++;
    if (this.mark === 2 ** 32) {
      this.marks.fill(0);
      this.mark = 1;
    }
  }

  /** Counts block `id`; false when this call has counted it already. */
  add(id: number): boolean {
    if (id >= this.marks.length) {
      const grown = new Uint32Array(Math.max(2 * this.marks.length, id + 1));
      grown.set(this.marks);
      this.marks = grown;
    }
    if (this.marks[id] === this.mark) return false;
    this.marks[id] = this.mark;
    return true;
  }
}

const countedBlocks = new BlockMarks();

export function stepShape(output: SchedulerOutput, blockSize: number): StepShape {
  const shape: StepShape = {
    contexts: output.scheduled.map((s) => s.numComputedTokens + s.numNewTokens),
    numRequests: output.scheduled.length,
    numTokens: output.numScheduledTokens,
    numSampled: 0,
    decodeRequests: 0,
    decodePairs: 0,
    decodeKeys: 0,
    prefillTokens: 0,
    prefillPairs: 0,
  };
  countedBlocks.start();
  for (const { numComputedTokens: c, numNewTokens: n, samples, blockIds } of output.scheduled) {
    if (samples) shape.numSampled++;
    const pairs = n * c + (n * (n + 1)) / 2;
    if (n === 1) {
      shape.decodeRequests++;
      shape.decodePairs += pairs;
      // Block j of the table holds keys j·blockSize.. up to the context (c + 1).
      for (let j = 0; j * blockSize <= c; j++) {
        if (countedBlocks.add(blockIds[0][j])) shape.decodeKeys += Math.min(blockSize, c + 1 - j * blockSize);
      }
    } else {
      shape.prefillTokens += n;
      shape.prefillPairs += pairs;
    }
  }
  return shape;
}

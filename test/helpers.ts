import { expect } from "vitest";
import type { Backend, KvCacheDtype } from "../src/backend/backend.js";
import { samplingParams, type ValidSamplingParams } from "../src/core/sampling-params.js";
import { InputError } from "../src/model/errors.js";
import { type SampledToken, Sampler } from "../src/runner/sampler.js";

/** Greedy generation of one sequence: the token ids after the prompt. */
export async function greedyIds(
  backend: Backend,
  promptIds: readonly number[],
  maxTokens: number,
  stopIds: readonly number[],
  maxModelLen: number,
): Promise<number[]> {
  const ids: number[] = [];
  const params = samplingParams({ temperature: 0, maxTokens });
  for await (const t of generateSequence(backend, { promptIds, params, stopIds, maxModelLen }))
    ids.push(t.tokenId);
  return ids;
}

/** Teacher-forced logits at every position of `ids`, in one forward pass: [ids.length][vocab]. */
export async function logitsAt(
  backend: Backend,
  ids: readonly number[],
  vocabSize: number,
  kvCacheDtype: KvCacheDtype = "f32",
): Promise<Float32Array[]> {
  const n = ids.length;
  const blockSize = 16;
  const numBlocks = Math.ceil(n / blockSize);
  backend.initKvCache({ numBlocks, blockSize, dtype: kvCacheDtype });
  const positions = Int32Array.from({ length: n }, (_, i) => i);
  const logits = await backend.forward({
    tokenIds: Int32Array.from(ids),
    positions,
    slotMappings: [positions],
    queryStartLoc: Int32Array.of(0, n),
    seqLens: Int32Array.of(n),
    blockTables: [[Int32Array.from({ length: numBlocks }, (_, i) => i)]],
    logitsIndices: positions,
  });
  return Array.from({ length: n }, (_, i) => logits.subarray(i * vocabSize, (i + 1) * vocabSize));
}

/** Largest |a − b| and largest |b| over every row of two sets of logits. */
export function maxDiff(a: Float32Array[], b: Float32Array[]): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++)
    for (let j = 0; j < a[i].length; j++) {
      diff = Math.max(diff, Math.abs(a[i][j] - b[i][j]));
      scale = Math.max(scale, Math.abs(b[i][j]));
    }
  return { diff, scale };
}

// The one-sequence-at-a-time oracle that batched, paged execution is checked against: no scheduler, no
// block manager, the sequence's blocks simply 0, 1, 2, ….
type FinishReason = "stop" | "length";

export interface SequenceRequest {
  promptIds: readonly number[];
  params: ValidSamplingParams;
  /** Token ids that end generation (not emitted). */
  stopIds: readonly number[];
  /** Longest total sequence (prompt + output) the model accepts. */
  maxModelLen: number;
}

const blockSize = 16;

/**
 * Generates one sequence on its own: the whole prompt in one forward pass, then one token per pass.
 * The sequence's blocks are simply 0, 1, 2, … of a cache sized for it.
 * Yields each sampled token; returns why it stopped.
 */
export async function* generateSequence(
  backend: Backend,
  req: SequenceRequest,
): AsyncGenerator<SampledToken, FinishReason> {
  const numBlocks = Math.ceil(req.maxModelLen / blockSize);
  backend.initKvCache({ numBlocks, blockSize, dtype: "f32" });
  const blockTable = Int32Array.from({ length: numBlocks }, (_, i) => i);
  const sampler = new Sampler(req.params);
  const output: number[] = [];
  let pending = [...req.promptIds];
  let position = 0;
  while (true) {
    const n = pending.length;
    const positions = Int32Array.from({ length: n }, (_, i) => position + i);
    const logits = await backend.forward({
      tokenIds: Int32Array.from(pending),
      positions,
      slotMappings: [positions],
      queryStartLoc: Int32Array.of(0, n),
      seqLens: Int32Array.of(position + n),
      blockTables: [[blockTable]],
      logitsIndices: Int32Array.of(n - 1),
    });
    position += n;
    const result = sampler.sample(logits, req.promptIds, output);
    if (req.stopIds.includes(result.tokenId)) return "stop";
    output.push(result.tokenId);
    yield result;
    if (output.length >= req.params.maxTokens || position + 1 >= req.maxModelLen) return "length";
    pending = [result.tokenId];
  }
}

/** xorshift32: a seeded stream of numbers in [0, 1). */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** xorshift32 in [-1, 1). */
export function signedRandom(seed: number): () => number {
  const next = xorshift(seed);
  return () => next() * 2 - 1;
}

/**
 * Block tables for sequences of `lengths` tokens, handed out in shuffled order from a pool with 3 spare blocks,
 * so every sequence's blocks are scattered.
 */
export function scatteredBlockTables(
  lengths: number[],
  blockSize: number,
  rand: () => number,
): { numBlocks: number; blockTables: Int32Array[] } {
  const blocksPer = lengths.map((n) => Math.ceil(n / blockSize));
  const numBlocks = blocksPer.reduce((a, b) => a + b, 0) + 3;
  const free = Array.from({ length: numBlocks }, (_, i) => i).sort(() => rand());
  return { numBlocks, blockTables: blocksPer.map((n) => Int32Array.from(free.splice(0, n))) };
}

/** `fn` throws an InputError of one line that contains every one of `parts`; returns its message. */
export function expectInputError(fn: () => unknown, ...parts: string[]): string {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(InputError);
  const message = (error as Error).message;
  expect(message).not.toContain("\n");
  for (const part of parts) expect(message).toContain(part);
  return message;
}

/**
 * What a message must never carry from a file: C0 and C1 controls, DEL, soft hyphen, bidi marks, overrides and
 * isolates, zero-width characters, line and paragraph separators, the byte-order mark, and (with the u flag,
 * \p{Cs} matches only a surrogate that is not half of a pair) lone surrogates.
 */
export const unsafeForTerminal =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\p{Cs}]/u;

/** Polls `condition` every 10 ms until it holds; throws after `timeoutMs`, naming `what`. */
export async function waitFor(
  condition: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Watches the event loop: a timer every `intervalMs` notes when it fires. `stop()` resolves to the longest
 * gap between two firings (in ms), a turn that blocked until the moment stop() was called included.
 */
export function watchEventLoop(intervalMs = 5): { stop: () => Promise<number> } {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, intervalMs);
  return {
    async stop() {
      await new Promise((resolve) => setTimeout(resolve, 4 * intervalMs));
      clearInterval(timer);
      return longest;
    },
  };
}

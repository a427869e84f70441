import type { Backend } from "../src/backend/backend.js";
import { generateSequence } from "../src/engine/generate-sequence.js";
import { defaultSamplingParams } from "../src/runner/sampling-params.js";

/** Greedy generation of one sequence: the token ids after the prompt. */
export async function greedyIds(
  backend: Backend,
  promptIds: readonly number[],
  maxTokens: number,
  stopIds: readonly number[],
  maxModelLen: number,
): Promise<number[]> {
  const ids: number[] = [];
  const params = { ...defaultSamplingParams, temperature: 0, maxTokens };
  for await (const t of generateSequence(backend, { promptIds, params, stopIds, maxModelLen }))
    ids.push(t.tokenId);
  return ids;
}

/** Teacher-forced logits at every position of `ids`, in one forward pass: [ids.length][vocab]. */
export async function logitsAt(
  backend: Backend,
  ids: readonly number[],
  vocabSize: number,
): Promise<Float32Array[]> {
  const n = ids.length;
  const blockSize = 16;
  const numBlocks = Math.ceil(n / blockSize);
  backend.initKvCache({ numBlocks, blockSize });
  const positions = Int32Array.from({ length: n }, (_, i) => i);
  const logits = await backend.forward({
    tokenIds: Int32Array.from(ids),
    positions,
    slotMapping: positions,
    queryStartLoc: Int32Array.of(0, n),
    seqLens: Int32Array.of(n),
    blockTables: [Int32Array.from({ length: numBlocks }, (_, i) => i)],
    logitsIndices: positions,
  });
  return Array.from({ length: n }, (_, i) => logits.subarray(i * vocabSize, (i + 1) * vocabSize));
}

import type { Backend } from "../backend/backend.js";
import { type SampledToken, Sampler } from "../runner/sampler.js";
import type { SamplingParams } from "../runner/sampling-params.js";

export type FinishReason = "stop" | "length";

export interface SequenceRequest {
  promptIds: readonly number[];
  params: SamplingParams;
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
  backend.initKvCache({ numBlocks, blockSize });
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
      slotMapping: positions,
      queryStartLoc: Int32Array.of(0, n),
      seqLens: Int32Array.of(position + n),
      blockTables: [blockTable],
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

import type { ForwardBatch } from "../backend/backend.js";

/**
 * A synthetic forward step, for timing a backend without a scheduler (the native benches, the simulator's
 * measured rates). Sequence s owns `blocksPer` consecutive blocks (s·blocksPer …) and gets tokens at positions
 * starts[s] … starts[s] + counts[s] − 1; logits for each one's last token.
 */
export function stepBatch(
  starts: number[],
  counts: number[],
  blocksPer: number,
  blockSize: number,
  vocabSize: number,
): ForwardBatch {
  const tokenIds: number[] = [];
  const positions: number[] = [];
  const slots: number[] = [];
  const queryStartLoc = [0];
  const logitsIndices: number[] = [];
  starts.forEach((start, s) => {
    for (let p = start; p < start + counts[s]; p++) {
      tokenIds.push((p * 7919 + s * 104729 + 3) % vocabSize);
      positions.push(p);
      slots.push((s * blocksPer + Math.floor(p / blockSize)) * blockSize + (p % blockSize));
    }
    queryStartLoc.push(tokenIds.length);
    logitsIndices.push(tokenIds.length - 1);
  });
  return {
    tokenIds: Int32Array.from(tokenIds),
    positions: Int32Array.from(positions),
    slotMappings: [Int32Array.from(slots)],
    queryStartLoc: Int32Array.from(queryStartLoc),
    seqLens: Int32Array.from(starts.map((st, s) => st + counts[s])),
    blockTables: [starts.map((_, s) => Int32Array.from({ length: blocksPer }, (_, i) => s * blocksPer + i))],
    logitsIndices: Int32Array.from(logitsIndices),
  };
}

/**
 * The Backend runs one forward pass over a flat "varlen" batch: the tokens of several sequences back
 * to back, each sequence either a prefill chunk (many tokens) or a decode (one token). K/V of every
 * token are written into the paged cache at `slotMapping[i]` (slot = block * blockSize + offset), and
 * attention of sequence s reads its whole context (seqLens[s] tokens) through `blockTables[s]`.
 *
 * KV cache layout, per layer, for K and for V: [numBlocks, blockSize, nKvHeads, headDim] of the spec's dtype
 * (f16: K/V are rounded to nearest-even binary16 when written and widened to f32 when read).
 */
export interface ForwardBatch {
  /** [numTokens] token ids, sequences back to back. */
  tokenIds: Int32Array;
  /** [numTokens] absolute position of each token in its sequence. */
  positions: Int32Array;
  /** [numTokens] KV slot each token's K/V is written to. */
  slotMapping: Int32Array;
  /** [numSeqs + 1] offset of each sequence's first token in the flat arrays. */
  queryStartLoc: Int32Array;
  /** [numSeqs] context length of each sequence including this step's tokens. */
  seqLens: Int32Array;
  /** [numSeqs] block ids holding each sequence's context, in order. */
  blockTables: Int32Array[];
  /** Rows (indices into the flat tokens) whose logits are wanted, usually each sequence's last token. */
  logitsIndices: Int32Array;
}

/** Element type of the KV cache: f32, or f16 (half the memory, K/V rounded when written). */
export type KvCacheDtype = "f32" | "f16";
export const kvCacheDtypes: readonly KvCacheDtype[] = ["f32", "f16"];

export interface KvCacheSpec {
  numBlocks: number;
  blockSize: number;
  /** Element type of K and V. */
  dtype: KvCacheDtype;
}

export interface Backend {
  readonly name: string;
  /**
   * Bytes of weights read in place from a memory-mapped file, when there are any: they become resident only
   * as they are used, and free-memory figures count them as free until then (the KV budget subtracts them).
   */
  readonly mappedWeightBytes?: number;
  /** (Re)allocates the paged KV cache; must be called before `forward`. */
  initKvCache(spec: KvCacheSpec): void;
  /** Returns logits, row-major [logitsIndices.length, vocabSize]. */
  forward(batch: ForwardBatch): Promise<Float32Array>;
}

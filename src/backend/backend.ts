/**
 * The Backend runs one forward pass over a flat "varlen" batch: the tokens of several sequences back
 * to back, each sequence either a prefill chunk (many tokens) or a decode (one token).
 *
 * The layers are in KV cache groups (KvCacheSpec.groups): every layer of a group shares its block tables. K/V
 * of every token are written into the paged cache of each layer at its group's `slotMappings[g][i]` (slot =
 * block * blockSize + offset), and attention of sequence s reads its context (seqLens[s] tokens, or the layer's
 * window of them) through `blockTables[g][s]`. A sliding-window group's table names block 0 (the null block)
 * where the blocks that left every query's window were: attention never reads those positions.
 *
 * KV cache layout, per slot layer, for K and for V: [numBlocks, blockSize, nKvHeads, headDim] of the spec's dtype
 * (f16: K/V are rounded to nearest-even binary16 when written and widened to f32 when read).
 */
import { setTimeout } from "node:timers/promises";
export interface ForwardBatch {
  /** [numTokens] token ids, sequences back to back. */
  tokenIds: Int32Array;
  /** [numTokens] absolute position of each token in its sequence. */
  positions: Int32Array;
  /** Per KV cache group: [numTokens] KV slot each token's K/V is written to in the group's layers. */
  slotMappings: Int32Array[];
  /** [numSeqs + 1] offset of each sequence's first token in the flat arrays. */
  queryStartLoc: Int32Array;
  /** [numSeqs] context length of each sequence including this step's tokens. */
  seqLens: Int32Array;
  /** Per KV cache group, per sequence: the block ids holding the sequence's context in the group's layers. */
  blockTables: Int32Array[][];
  /** Rows (indices into the flat tokens) whose logits are wanted, usually each sequence's last token. */
  logitsIndices: Int32Array;
}

/** Element type of the KV cache: f32, or f16 (half the memory, K/V rounded when written). */
export type KvCacheDtype = "f32" | "f16";
export const kvCacheDtypes: readonly KvCacheDtype[] = ["f32", "f16"];

/** The layers whose K/V one KV cache group's block tables address. */
export interface KvCacheLayerGroup {
  /** Model layers; layers[i] lives in slot layer i. Every group has as many. */
  readonly layers: readonly number[];
}

export interface KvCacheSpec {
  numBlocks: number;
  blockSize: number;
  /** Element type of K and V. */
  dtype: KvCacheDtype;
  /**
   * The KV cache groups. One block id means the same memory in every group: one K and one V array per slot layer,
   * each block holding one row range of all of them. A block belongs to one group at a time, so the layers that
   * share a slot layer (one per group) never write each other's rows. Absent: one group of every layer, which
   * keeps every block (a backend driven without the engine's KV cache manager).
   */
  groups?: readonly KvCacheLayerGroup[];
}

/** The spec's KV cache groups: as given, or the one group of all nLayers layers that their absence stands for. */
export function specGroups(spec: KvCacheSpec, nLayers: number): readonly KvCacheLayerGroup[] {
  return spec.groups ?? [{ layers: Array.from({ length: nLayers }, (_, l) => l) }];
}

/**
 * Where each of nLayers layers keeps its K/V: its group (whose tables and slot mapping address it) and its slot
 * layer. Throws unless the groups are of equal size and hold every layer once.
 */
export function layerKvSlots(spec: KvCacheSpec, nLayers: number): { group: number; slot: number }[] {
  const groups = specGroups(spec, nLayers);
  const slots = new Array<{ group: number; slot: number } | undefined>(nLayers).fill(undefined);
  groups.forEach((g, group) => {
    if (g.layers.length !== groups[0].layers.length)
      throw new Error("KV cache groups must have equal layer counts");
    g.layers.forEach((layer, slot) => {
      if (!(layer >= 0 && layer < nLayers) || slots[layer] !== undefined)
        throw new Error(
          `KV cache groups: layer ${layer} is not one of ${nLayers} layers, or is in two groups`,
        );
      slots[layer] = { group, slot };
    });
  });
  const missing = slots.indexOf(undefined);
  if (missing >= 0) throw new Error(`KV cache groups: layer ${missing} is in no group`);
  return slots as { group: number; slot: number }[];
}

/**
 * One row for Backend.sample: the draw src/runner/sampler.ts's pickToken makes, with the request's parameters
 * (temperature 0: argmax).
 */
export interface SampleRow {
  /** The row to draw from: the logits after the request's own rules (mask, constraints, penalties). Not changed. */
  logits: Float32Array;
  /** The logits log-probabilities are taken from (before the request's own rules). */
  rawLogits: Float32Array;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  /** Uniform in [0, 1) from the request's own Rng; unused at temperature 0. */
  u: number;
  /** How many of the most likely raw tokens to give; 0: none. */
  logprobs: number;
}

export interface RowSample {
  tokenId: number;
  /** log Σ exp(rawLogits) when logprobs > 0, else 0. */
  logNormalizer: number;
  /** The min(logprobs, vocabulary) most likely raw tokens, best first (equal logits: lower id first). */
  topIds: number[];
}

/** Where a backend's forward pass spent its time: wall seconds on the backend's own threads. */
export interface ForwardTimes {
  seconds: number;
  /** K/V stores and the attention kernel, every layer. */
  attentionSeconds: number;
  /** The classifier (output) matmul. */
  classifierSeconds: number;
}

/** Resolves once the backend's KV cache is resident (Backend.kvCacheResident): for timing steps as they run in steady state. */
export async function untilKvCacheResident(backend: Backend): Promise<void> {
  while (backend.kvCacheResident === false) await setTimeout(10);
}

export interface Backend {
  readonly name: string;
  /**
   * Bytes of weights read in place from a memory-mapped file, when there are any: they become resident only
   * as they are used, and free-memory figures count them as free until then (the KV budget subtracts them).
   */
  readonly mappedWeightBytes?: number;
  /**
   * False while the KV cache's memory is still being made resident in the background: until then, steps that
   * write new blocks pay page faults. Absent: always resident.
   */
  readonly kvCacheResident?: boolean;
  /** (Re)allocates the paged KV cache; must be called before `forward`. */
  initKvCache(spec: KvCacheSpec): void;
  /**
   * Returns logits, row-major [logitsIndices.length, vocabSize]. A backend may write them into the start of `out`
   * (which then holds at least that many floats) and return a view of it, instead of allocating.
   */
  forward(batch: ForwardBatch, out?: Float32Array): Promise<Float32Array>;
  /** The split of the last forward pass, where the backend measures one; read after `forward` settles. */
  readonly lastForwardTimes?: ForwardTimes;
  /**
   * Samples every row at once, off the JS thread, picking what src/runner/sampler.ts picks for the same uniforms;
   * not while `forward` runs. Backends without it leave sampling to the runner's JS Sampler.
   */
  sample?(rows: SampleRow[]): Promise<RowSample[]>;
}

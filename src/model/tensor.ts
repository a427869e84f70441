/**
 * Weight tensors as the loaders produce them and the backends consume them.
 *
 * Layout: `shape` is outermost-first (row-major), so a matrix used as y = W·x is [out, in] and each
 * of its `out` rows is contiguous in `data`. Quantized types keep GGUF's block layouts byte for byte
 * (a row of `in` values is `in / blockSize` blocks), so a GGUF tensor is used without re-packing.
 * Note GGUF itself lists dimensions innermost-first (ne[0] = in); the GGUF reader reverses them.
 */
export type DType =
  | "f32"
  | "f16"
  | "bf16"
  | "q8_0"
  | "q4_0"
  | "q4_1"
  | "q5_0"
  | "q5_1"
  | "q2_k"
  | "q3_k"
  | "q4_k"
  | "q5_k"
  | "q6_k"
  | "iq4_nl"
  | "iq4_xs";

export interface Tensor {
  dtype: DType;
  shape: number[];
  data: Uint8Array;
  /**
   * Where `data` lies in the GGUF file the model was loaded from (a shard of a split model: the shard; a fused
   * tensor's part: where its rows lie), so the native backend maps those bytes instead of reading them; absent
   * for tensors built in memory.
   */
  file?: { path: string; offset: number };
}

export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Tensors of one dtype and row width stacked row after row (a fused projection); one tensor is returned as is. */
export function concatRows(parts: readonly Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  const data = new Uint8Array(parts.reduce((sum, t) => sum + t.data.byteLength, 0));
  let at = 0;
  for (const t of parts) {
    data.set(t.data, at);
    at += t.data.byteLength;
  }
  const rows = parts.reduce((sum, t) => sum + t.shape[0], 0);
  return { dtype: parts[0].dtype, shape: [rows, ...parts[0].shape.slice(1)], data };
}

import type { RopeStyle } from "./config.js";
import type { Tensor } from "./tensor.js";

/**
 * Reorders the rows of a Q or K projection (or its bias) inside each head between the two RoPE conventions.
 * A head of width h rotates rows (2i, 2i + 1) together in interleaved order (llama2.c, GGUF llama) and rows
 * (i, i + h/2) in rotate-half order (Hugging Face, "neox"). So interleaved row 2i + j (j = 0, 1) is neox row
 * j·h/2 + i; going to interleaved is convert_hf_to_gguf.py's permute(), going to neox its inverse.
 * Rows are contiguous bytes in every dtype, so they move without conversion.
 */
export function reorderRopeRows(t: Tensor, nHeads: number, to: RopeStyle): Tensor {
  const rows = t.shape[0];
  const headDim = rows / nHeads;
  const half = headDim / 2;
  const rowBytes = t.data.byteLength / rows;
  const out = new Uint8Array(t.data.byteLength);
  for (let head = 0; head < nHeads; head++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const interleaved = (head * headDim + 2 * i + j) * rowBytes;
        const neox = (head * headDim + j * half + i) * rowBytes;
        const [from, into] = to === "interleaved" ? [neox, interleaved] : [interleaved, neox];
        out.set(t.data.subarray(from, from + rowBytes), into);
      }
    }
  }
  return { dtype: t.dtype, shape: [...t.shape], data: out };
}

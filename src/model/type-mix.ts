/** A model's type mix: how many of its weight tensors, and how many bytes, each type holds. */
import { tensorBytes } from "./dtype.js";
import type { DType, Tensor } from "./tensor.js";

export interface TypeShare {
  dtype: DType;
  tensors: number;
  bytes: number;
}

/** The types of `tensors`, most bytes first (sizes from the shapes: a lazily read tensor stays unread). */
export function typeMix(tensors: Iterable<Tensor>): TypeShare[] {
  const byType = new Map<DType, TypeShare>();
  for (const t of tensors) {
    const share = byType.get(t.dtype) ?? { dtype: t.dtype, tensors: 0, bytes: 0 };
    share.tensors++;
    share.bytes += tensorBytes(t.dtype, t.shape);
    byType.set(t.dtype, share);
  }
  return [...byType.values()].sort((a, b) => b.bytes - a.bytes);
}

/** "q4_k 155 tensors 540 MiB, q6_k 23 tensors 150 MiB, f32 45 tensors 0.2 MiB". */
export function describeTypeMix(tensors: Iterable<Tensor>): string {
  return typeMix(tensors)
    .map(({ dtype, tensors, bytes }) => {
      const mib = bytes / 2 ** 20;
      return `${dtype} ${tensors} tensor${tensors === 1 ? "" : "s"} ${mib >= 10 ? Math.round(mib) : Number(mib.toPrecision(2))} MiB`;
    })
    .join(", ");
}

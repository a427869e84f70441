/**
 * A tensor element type as a codec over GGUF's blocks: a row of n values is n / blockSize blocks of bytesPerBlock
 * bytes each, laid out as ggml lays them out (each type's file draws its blocks).
 */
import { f16ToF32Table, f32ToF16 } from "../float-formats.js";

export interface BlockCodec {
  /** Values per block. */
  blockSize: number;
  bytesPerBlock: number;
  /** out.length values (whole blocks) from `data`, as ggml's dequantize_row for the type computes them. */
  dequantize(data: Uint8Array, out: Float32Array): void;
  /**
   * x (whole blocks) into `out`, rounded as ggml's reference quantizer for the type rounds them (without an
   * importance matrix); absent for a type vellum only reads.
   */
  quantize?: (x: Float32Array, out: Uint8Array) => void;
}

/** The f16 at data[at..at+1] as a number. */
export function halfAt(data: Uint8Array, at: number): number {
  return f16ToF32Table()[data[at] | (data[at + 1] << 8)];
}

/** x rounded to f16 into data[at..at+1]. */
export function writeHalf(data: Uint8Array, at: number, x: number): void {
  const h = f32ToF16(x);
  data[at] = h & 0xff;
  data[at + 1] = h >>> 8;
}

/** C's roundf: halves go away from zero (Math.round sends -2.5 to -2). */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** A byte as int8. */
export function int8(byte: number): number {
  return (byte << 24) >> 24;
}

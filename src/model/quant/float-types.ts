/**
 * The unquantized element types, one value a block:
 *   f32   4 bytes   IEEE binary32, little-endian
 *   f16   2 bytes   IEEE binary16
 *   bf16  2 bytes   the high 16 bits of a binary32
 * Conversions assume a little-endian host (every platform Node ships for but s390x).
 */
import { f16ToF32Table, f32ToBf16, f32ToF16 } from "../float-formats.js";
import type { BlockCodec } from "./block-codec.js";

/** A copy of `bytes` as a typed array (a copy, because a Uint8Array view may not be aligned for it). */
function copyAs<T extends Uint16Array | Float32Array>(bytes: Uint8Array, out: T): T {
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes.subarray(0, out.byteLength));
  return out;
}

export const f32: BlockCodec = {
  blockSize: 1,
  bytesPerBlock: 4,
  dequantize: (data, out) => copyAs(data, out),
  quantize: (x, out) => new Float32Array(out.buffer, out.byteOffset, x.length).set(x),
};

export const f16: BlockCodec = {
  blockSize: 1,
  bytesPerBlock: 2,
  dequantize(data, out) {
    const h = copyAs(data, new Uint16Array(out.length));
    const table = f16ToF32Table();
    for (let i = 0; i < out.length; i++) out[i] = table[h[i]];
  },
  quantize(x, out) {
    const h = new Uint16Array(x.length);
    for (let i = 0; i < x.length; i++) h[i] = f32ToF16(x[i]);
    out.set(new Uint8Array(h.buffer));
  },
};

export const bf16: BlockCodec = {
  blockSize: 1,
  bytesPerBlock: 2,
  dequantize(data, out) {
    const b = copyAs(data, new Uint16Array(out.length));
    const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < out.length; i++) outBits[i] = b[i] << 16;
  },
  quantize(x, out) {
    const b = new Uint16Array(x.length);
    for (let i = 0; i < x.length; i++) b[i] = f32ToBf16(x[i]);
    out.set(new Uint8Array(b.buffer));
  },
};

/**
 * The narrow float formats weights and caches are stored in (IEEE binary16, bfloat16), converted from and to
 * float32 as ggml converts them, and the shortest decimal of a float32.
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

function f32Bits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0];
}

/** binary16 bits of x (first rounded to binary32), round-to-nearest-even; NaN stays NaN, overflow gives ±inf. */
export function f32ToF16(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  if (exp > 112) {
    // Normal in f16 range (or overflowing): drop 13 mantissa bits, rounding to even. A carry out of the
    // mantissa bumps the exponent, and past the largest finite value lands exactly on inf (0x7c00).
    const h = ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    const rounded = rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? h + 1 : h;
    return sign | Math.min(rounded, 0x7c00);
  }
  // f16 subnormal: value = m × 2^-24, and x = (1.mant) × 2^(exp-127) = full × 2^(exp-150), so m = full >> (126 - exp).
  const shift = 126 - exp;
  if (shift > 24) return sign; // below half the smallest subnormal
  const full = mant | 0x800000;
  const m = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (rest > half || (rest === half && (m & 1) === 1) ? m + 1 : m);
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * The shortest decimal that rounds to the same float32: GGUF stores 1e-5 as 9.99999974737875e-6, and a config
 * should say 1e-5 again (the forward pass rounds it to the same float32 anyway).
 */
export function shortestFloat32(x: number): number {
  for (let digits = 1; digits < 17; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === Math.fround(x)) return candidate;
  }
  return x;
}

/** bfloat16 bits of x (first rounded to binary32), round-to-nearest-even as ggml does; NaN is kept quiet. */
export function f32ToBf16(x: number): number {
  const bits = f32Bits(x);
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16ToF32(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0];
}

/** All 65536 f16 values as f32: widening one (a weight, a KV cache entry) is then one lookup. Built on first use. */
let f16Table: Float32Array | undefined;
export function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

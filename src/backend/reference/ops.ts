import type { RopeScaling, RopeStyle } from "../../model/config.js";

/**
 * The reference backend's maths: plain loops over row-major Float32Arrays, accumulating in float64
 * (JS numbers) so the oracle is as exact as f32 storage allows. Written for clarity, not speed.
 */

/**
 * y[t, o] = Σ_i x[t, i] · w[o, i] (+ bias[o]).  x: [T, n], w: [m, n] (row o = output o), y: [T, m].
 * Each sum runs over i in order; four tokens at a time share each weight load, which keeps a weight row in cache
 * while it serves them (several times faster on large vocabularies, the same sums).
 */
export function matmul(
  x: Float32Array,
  w: Float32Array,
  T: number,
  n: number,
  m: number,
  bias?: Float32Array,
) {
  const y = new Float32Array(T * m);
  for (let o = 0; o < m; o++) {
    const wo = o * n;
    const b = bias ? bias[o] : 0;
    let t = 0;
    for (; t + 4 <= T; t += 4) {
      const x0 = t * n;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < n; i++) {
        const wi = w[wo + i];
        s0 += x[x0 + i] * wi;
        s1 += x[x0 + n + i] * wi;
        s2 += x[x0 + 2 * n + i] * wi;
        s3 += x[x0 + 3 * n + i] * wi;
      }
      y[t * m + o] = s0 + b;
      y[(t + 1) * m + o] = s1 + b;
      y[(t + 2) * m + o] = s2 + b;
      y[(t + 3) * m + o] = s3 + b;
    }
    for (; t < T; t++) {
      const xo = t * n;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += x[xo + i] * w[wo + i];
      y[t * m + o] = sum + b;
    }
  }
  return y;
}

/** out[t] = x[t] / sqrt(mean(x[t]²) + eps) · weight, for each of T rows of width n. */
export function rmsNorm(x: Float32Array, weight: Float32Array, T: number, n: number, eps: number) {
  const out = new Float32Array(T * n);
  rmsNormInto(x, weight, out, T, n, eps);
  return out;
}

/**
 * rmsNorm written into `out`, in f32 or f64 (training uses both). Returns each row's r = 1/sqrt(mean(x²) + eps),
 * which training's backward pass reuses.
 */
export function rmsNormInto(
  x: Float32Array | Float64Array,
  weight: Float32Array | Float64Array,
  out: Float32Array | Float64Array,
  T: number,
  n: number,
  eps: number,
): Float64Array {
  const inv = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const o = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i] * x[o + i];
    const r = 1 / Math.sqrt(ss / n + eps);
    inv[t] = r;
    for (let i = 0; i < n; i++) out[o + i] = x[o + i] * r * weight[i];
  }
  return inv;
}

/**
 * How RoPE turns one layer's heads: ggml_rope_ext's parameters. The first `dims` values of each head rotate, the
 * rest pass through (partial rotary); `interleaved` pairs are (x[2i], x[2i+1]), `neox` pairs (x[i], x[i + dims/2]).
 */
export interface RopeParams {
  dims: number;
  style: RopeStyle;
  theta: number;
  /** [dims/2] per-pair frequency divisors (Llama 3's rope_freqs, LongRoPE's factors); absent: all 1. */
  freqFactors?: Float32Array;
  /** Absent: no scaling. */
  scaling?: RopeScaling;
}

/**
 * cos and sin of each pair's angle at `pos`, as ggml_rope_ext computes them (in float64 here): pair i turns by
 * θ = pos · theta^(−2i/dims) / freqFactor[i], times freqScale, mixed back toward the unscaled angle by YaRN's ramp
 * · extFactor; cos and sin are multiplied by attnFactor, and with YaRN by 1 + 0.1·ln(1/freqScale).
 */
export function ropeAngles(r: RopeParams, pos: number): { cos: Float64Array; sin: Float64Array } {
  const pairs = r.dims / 2;
  const s = r.scaling;
  const freqScale = s?.freqScale ?? 1;
  const extFactor = s?.extFactor ?? 0;
  let mscale = s?.attnFactor ?? 1;
  if (extFactor !== 0) mscale *= 1 + 0.1 * Math.log(1 / freqScale);
  const [low, high] = s ? yarnCorrectionRange(r.dims, r.theta, s) : [0, 0];
  const cos = new Float64Array(pairs);
  const sin = new Float64Array(pairs);
  for (let i = 0; i < pairs; i++) {
    const extrapolated = (pos * r.theta ** ((-2 * i) / r.dims)) / (r.freqFactors?.[i] ?? 1);
    let angle = freqScale * extrapolated;
    if (extFactor !== 0) {
      const ramp = (1 - Math.min(1, Math.max(0, (i - low) / Math.max(0.001, high - low)))) * extFactor;
      angle = angle * (1 - ramp) + extrapolated * ramp;
    }
    cos[i] = Math.cos(angle) * mscale;
    sin[i] = Math.sin(angle) * mscale;
  }
  return { cos, sin };
}

/**
 * YaRN's correction range in pairs (ggml_rope_yarn_corr_dims): pairs below `low` keep their unscaled angle, pairs
 * above `high` take the scaled one, those between a linear mix.
 */
function yarnCorrectionRange(dims: number, theta: number, s: RopeScaling): [number, number] {
  const pairAt = (rotations: number) =>
    (dims * Math.log(s.originalContext / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  return [Math.max(0, Math.floor(pairAt(s.betaFast))), Math.min(dims - 1, Math.ceil(pairAt(s.betaSlow)))];
}

/** Rotary position embedding, in place, on x: [T, nHeads, headDim] with position positions[t]. */
export function rope(x: Float32Array, positions: Int32Array, nHeads: number, headDim: number, r: RopeParams) {
  const half = r.dims / 2;
  for (let t = 0; t < positions.length; t++) {
    const { cos, sin } = ropeAngles(r, positions[t]);
    for (let h = 0; h < nHeads; h++) {
      const base = (t * nHeads + h) * headDim;
      for (let k = 0; k < half; k++) {
        const i0 = r.style === "interleaved" ? base + 2 * k : base + k;
        const i1 = r.style === "interleaved" ? i0 + 1 : i0 + half;
        const a = x[i0];
        const b = x[i1];
        x[i0] = a * cos[k] - b * sin[k];
        x[i1] = a * sin[k] + b * cos[k];
      }
    }
  }
}

/** gate ← silu(gate) · up, element-wise (SwiGLU). */
export function swiglu(gate: Float32Array, up: Float32Array) {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    gate[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** gate ← gelu(gate) · up, element-wise (GeGLU), with GELU's tanh form: 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))). */
export function geglu(gate: Float32Array, up: Float32Array) {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    gate[i] = 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g))) * up[i];
  }
}

/** x ← c · tanh(x / c), element-wise: soft-capping at ±c. */
export function softcap(x: Float32Array | Float64Array, c: number) {
  for (let i = 0; i < x.length; i++) x[i] = c * Math.tanh(x[i] / c);
}

/** a ← a + b, element-wise (residual connection). */
export function addInPlace(a: Float32Array, b: Float32Array) {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}

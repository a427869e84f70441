/**
 * The reference backend's maths: plain loops over row-major Float32Arrays, accumulating in float64
 * (JS numbers) so the oracle is as exact as f32 storage allows. Written for clarity, not speed.
 */

/** y[t, o] = Σ_i x[t, i] · w[o, i] (+ bias[o]).  x: [T, n], w: [m, n] (row o = output o), y: [T, m]. */
export function matmul(
  x: Float32Array,
  w: Float32Array,
  T: number,
  n: number,
  m: number,
  bias?: Float32Array,
) {
  const y = new Float32Array(T * m);
  for (let t = 0; t < T; t++) {
    const xo = t * n;
    for (let o = 0; o < m; o++) {
      const wo = o * n;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += x[xo + i] * w[wo + i];
      y[t * m + o] = bias ? sum + bias[o] : sum;
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
 * Rotary position embedding, in place, on x: [T, nHeads, headDim] with position positions[t].
 * Pair k (k < headDim/2) turns by angle pos · theta^(-2k/headDim).
 * interleaved: the pair is (x[2k], x[2k+1]); neox (rotate-half): the pair is (x[k], x[k + headDim/2]).
 */
export function rope(
  x: Float32Array,
  positions: Int32Array,
  nHeads: number,
  headDim: number,
  theta: number,
  style: "interleaved" | "neox",
) {
  const half = headDim / 2;
  for (let t = 0; t < positions.length; t++) {
    const pos = positions[t];
    for (let h = 0; h < nHeads; h++) {
      const base = (t * nHeads + h) * headDim;
      for (let k = 0; k < half; k++) {
        const angle = pos * theta ** ((-2 * k) / headDim);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const i0 = style === "interleaved" ? base + 2 * k : base + k;
        const i1 = style === "interleaved" ? i0 + 1 : i0 + half;
        const a = x[i0];
        const b = x[i1];
        x[i0] = a * c - b * s;
        x[i1] = a * s + b * c;
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

/** a ← a + b, element-wise (residual connection). */
export function addInPlace(a: Float32Array, b: Float32Array) {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}

/**
 * Element-wise pieces of the training forward pass and their hand-written backward passes. Forward maths is
 * the reference backend's (src/backend/reference/ops.ts) line for line, and for rmsNorm its own rmsNormInto;
 * sums run in float64 (JS numbers). All activations are row-major [rows, width].
 */
import type { Vec } from "./compute.js";

/**
 * Backward of y = x · r · w (rmsNormInto, which returns r per row): dw += Σ_rows dy · x · r, and
 * dx += r · (dy · w) − x · r³/n · Σ_i dy_i w_i x_i (accumulated into dx, which already holds the residual stream's
 * gradient).
 */
export function rmsNormBackward(
  x: Vec,
  w: Vec,
  inv: Float64Array,
  dy: Vec,
  dx: Vec,
  dw: Vec,
  rows: number,
  n: number,
) {
  for (let t = 0; t < rows; t++) {
    const o = t * n;
    const r = inv[t];
    let dot = 0;
    for (let i = 0; i < n; i++) {
      dot += dy[o + i] * w[i] * x[o + i];
      dw[i] += dy[o + i] * x[o + i] * r;
    }
    const c = (r * r * r * dot) / n;
    for (let i = 0; i < n; i++) dx[o + i] += r * dy[o + i] * w[i] - c * x[o + i];
  }
}

/** cos and sin of pos · theta^(-2k/headDim) for pos < seqLen, k < headDim/2: [seqLen, headDim/2] each. */
export function ropeTables(seqLen: number, headDim: number, theta: number) {
  const half = headDim / 2;
  const cos = new Float64Array(seqLen * half);
  const sin = new Float64Array(seqLen * half);
  for (let pos = 0; pos < seqLen; pos++) {
    for (let k = 0; k < half; k++) {
      const angle = pos * theta ** ((-2 * k) / headDim);
      cos[pos * half + k] = Math.cos(angle);
      sin[pos * half + k] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * Interleaved RoPE in place on x: [rows, nHeads, headDim], row r at position r mod seqLen. Pair (x[2k], x[2k+1])
 * turns by +angle (forward) or −angle (`inverse`: the backward pass, since a rotation's transpose is its inverse).
 */
export function rope(
  x: Vec,
  rows: number,
  seqLen: number,
  nHeads: number,
  headDim: number,
  tables: { cos: Float64Array; sin: Float64Array },
  inverse: boolean,
) {
  const half = headDim / 2;
  const sign = inverse ? -1 : 1;
  for (let t = 0; t < rows; t++) {
    const p = (t % seqLen) * half;
    for (let h = 0; h < nHeads; h++) {
      const base = (t * nHeads + h) * headDim;
      for (let k = 0; k < half; k++) {
        const c = tables.cos[p + k];
        const s = sign * tables.sin[p + k];
        const i0 = base + 2 * k;
        const a = x[i0];
        const b = x[i0 + 1];
        x[i0] = a * c - b * s;
        x[i0 + 1] = a * s + b * c;
      }
    }
  }
}

/** out = silu(gate) · up, silu(g) = g / (1 + e^(−g)). */
export function swigluForward(gate: Vec, up: Vec, out: Vec) {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    out[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** dup = dout · silu(g); dgate = dout · up · σ(g)(1 + g(1 − σ(g))). */
export function swigluBackward(gate: Vec, up: Vec, dout: Vec, dgate: Vec, dup: Vec) {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    const sig = 1 / (1 + Math.exp(-g));
    dup[i] = dout[i] * g * sig;
    dgate[i] = dout[i] * up[i] * sig * (1 + g * (1 - sig));
  }
}

/**
 * Causal softmax in place over one [T, T] matrix of raw scores q·k: row i becomes softmax(scale · s[i, 0..i])
 * and 0 beyond i. Max-subtracted, as in the reference attention.
 */
export function causalSoftmax(s: Vec, T: number, scale: number) {
  for (let i = 0; i < T; i++) {
    const o = i * T;
    let max = -Infinity;
    for (let j = 0; j <= i; j++) {
      s[o + j] *= scale;
      if (s[o + j] > max) max = s[o + j];
    }
    let sum = 0;
    for (let j = 0; j <= i; j++) {
      const e = Math.exp(s[o + j] - max);
      s[o + j] = e;
      sum += e;
    }
    for (let j = 0; j <= i; j++) s[o + j] /= sum;
    for (let j = i + 1; j < T; j++) s[o + j] = 0;
  }
}

/** Softmax backward in place: dP becomes dS = scale · P ⊙ (dP − Σ_j P dP) per row (0 above the diagonal). */
export function causalSoftmaxBackward(p: Vec, dp: Vec, T: number, scale: number) {
  for (let i = 0; i < T; i++) {
    const o = i * T;
    let dot = 0;
    for (let j = 0; j <= i; j++) dot += p[o + j] * dp[o + j];
    for (let j = 0; j <= i; j++) dp[o + j] = scale * p[o + j] * (dp[o + j] - dot);
    for (let j = i + 1; j < T; j++) dp[o + j] = 0;
  }
}

/**
 * Cross-entropy of logits [rows, V] against targets (a target < 0 is ignored). Returns the summed loss in nats
 * and the number of targets; turns logits into the gradient of the mean loss, (softmax − one-hot) / count.
 */
export function crossEntropy(logits: Vec, targets: Int32Array, rows: number, V: number) {
  let count = 0;
  for (let t = 0; t < rows; t++) if (targets[t] >= 0) count++;
  let total = 0;
  for (let t = 0; t < rows; t++) {
    const o = t * V;
    if (targets[t] < 0) {
      logits.fill(0, o, o + V);
      continue;
    }
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (logits[o + i] > max) max = logits[o + i];
    total += max - logits[o + targets[t]];
    let sum = 0;
    for (let i = 0; i < V; i++) {
      const e = Math.exp(logits[o + i] - max);
      logits[o + i] = e;
      sum += e;
    }
    total += Math.log(sum);
    for (let i = 0; i < V; i++) logits[o + i] /= sum * count;
    logits[o + targets[t]] -= 1 / count;
  }
  return { totalNats: total, count };
}

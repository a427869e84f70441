/**
 * The Llama forward pass for training, with its hand-written backward pass. Same maths as the reference
 * backend (src/backend/reference/reference-backend.ts): RMSNorm, interleaved RoPE, causal GQA attention,
 * SwiGLU FFN, untied classifier. Every matrix product goes through `compute.gemm` (native f32 in training,
 * plain JS f64 in gradient checks).
 *
 * A batch is B sequences of T tokens, flattened to N = B·T rows; row b·T + t is at position t.
 * Activations are [N, width] row-major; q is [N, nHeads, headDim] and k, v are [N, nKvHeads, headDim], so the
 * head-h slice of sequence b is a T × headDim matrix starting at (b·T)·width + h·headDim with row stride width.
 * Attention probabilities are kept per (sequence, head) as [T, T].
 */
import { rmsNormInto } from "../backend/reference/ops.js";
import { type ModelConfig, tensorNames } from "../model/config.js";
import type { Compute, Vec } from "./compute.js";
import {
  causalSoftmax,
  causalSoftmaxBackward,
  crossEntropy,
  rmsNormBackward,
  rope,
  ropeTables,
  swigluBackward,
  swigluForward,
} from "./layers.js";
import type { Param, ParamSet } from "./params.js";

/** What the forward pass keeps of one layer for the backward pass. */
interface LayerActivations {
  xIn: Vec;
  attnInv: Float64Array;
  xnAttn: Vec;
  q: Vec;
  k: Vec;
  v: Vec;
  probs: Vec;
  attn: Vec;
  xMid: Vec;
  ffnInv: Float64Array;
  xnFfn: Vec;
  gate: Vec;
  up: Vec;
  hidden: Vec;
}

export interface LossResult {
  /** Summed cross-entropy over the counted targets, in nats. */
  totalNats: number;
  count: number;
  /** totalNats / count. */
  loss: number;
}

export class LlamaGraph {
  private readonly N: number;
  private readonly qDim: number;
  private readonly kvDim: number;
  private readonly acts: LayerActivations[];
  private readonly tables: { cos: Float64Array; sin: Float64Array };
  private readonly xOut: Vec;
  private readonly xFinal: Vec;
  private finalInv: Float64Array = new Float64Array(0);
  private readonly logits: Vec;
  private inputs: Int32Array = new Int32Array(0);

  constructor(
    private readonly config: ModelConfig,
    private readonly params: ParamSet,
    private readonly compute: Compute,
    readonly batchSize: number,
    readonly seqLen: number,
  ) {
    const c = config;
    const N = batchSize * seqLen;
    this.N = N;
    this.qDim = c.nHeads * c.headDim;
    this.kvDim = c.nKvHeads * c.headDim;
    const a = (n: number) => compute.alloc(n);
    this.acts = Array.from({ length: c.nLayers }, () => ({
      xIn: a(N * c.dim),
      attnInv: new Float64Array(N),
      xnAttn: a(N * c.dim),
      q: a(N * this.qDim),
      k: a(N * this.kvDim),
      v: a(N * this.kvDim),
      probs: a(batchSize * c.nHeads * seqLen * seqLen),
      attn: a(N * this.qDim),
      xMid: a(N * c.dim),
      ffnInv: new Float64Array(N),
      xnFfn: a(N * c.dim),
      gate: a(N * c.hiddenDim),
      up: a(N * c.hiddenDim),
      hidden: a(N * c.hiddenDim),
    }));
    this.tables = ropeTables(seqLen, c.headDim, c.ropeTheta);
    this.xOut = a(N * c.dim);
    this.xFinal = a(N * c.dim);
    this.logits = a(N * c.vocabSize);
  }

  private p(name: string): Param {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    return p;
  }

  /**
   * Runs the batch: inputs and targets are [B·T] token ids (target < 0: not counted). Returns the loss and
   * keeps what `backward` needs.
   */
  forward(inputs: Int32Array, targets: Int32Array): LossResult {
    const c = this.config;
    const { N, qDim, kvDim } = this;
    // y[N, outDim] = x[N, inDim] · Wᵀ, W row-major [outDim, inDim] (a Linear layer without bias).
    const linear = (x: Vec, inDim: number, w: Vec, y: Vec, outDim: number) =>
      this.compute.gemm(false, true, N, outDim, inDim, x, inDim, w, inDim, y, outDim, false);
    if (inputs.length !== N || targets.length !== N)
      throw new Error(`a batch must hold ${N} inputs and targets`);
    this.inputs = inputs;

    const x = this.compute.alloc(N * c.dim);
    const emb = this.p(tensorNames.tokenEmbedding).value;
    for (let t = 0; t < N; t++) x.set(emb.subarray(inputs[t] * c.dim, (inputs[t] + 1) * c.dim), t * c.dim);
    const proj = this.compute.alloc(N * c.dim);

    for (let l = 0; l < c.nLayers; l++) {
      const s = this.acts[l];
      s.xIn.set(x);
      s.attnInv = rmsNormInto(x, this.p(tensorNames.attnNorm(l)).value, s.xnAttn, N, c.dim, c.normEps);
      linear(s.xnAttn, c.dim, this.p(tensorNames.wq(l)).value, s.q, qDim);
      linear(s.xnAttn, c.dim, this.p(tensorNames.wk(l)).value, s.k, kvDim);
      linear(s.xnAttn, c.dim, this.p(tensorNames.wv(l)).value, s.v, kvDim);
      rope(s.q, N, this.seqLen, c.nHeads, c.headDim, this.tables, false);
      rope(s.k, N, this.seqLen, c.nKvHeads, c.headDim, this.tables, false);
      this.attentionForward(s);
      linear(s.attn, qDim, this.p(tensorNames.wo(l)).value, proj, c.dim);
      addInPlace(x, proj);

      s.xMid.set(x);
      s.ffnInv = rmsNormInto(x, this.p(tensorNames.ffnNorm(l)).value, s.xnFfn, N, c.dim, c.normEps);
      const h = c.hiddenDim;
      linear(s.xnFfn, c.dim, this.p(tensorNames.ffnGate(l)).value, s.gate, h);
      linear(s.xnFfn, c.dim, this.p(tensorNames.ffnUp(l)).value, s.up, h);
      swigluForward(s.gate, s.up, s.hidden);
      linear(s.hidden, h, this.p(tensorNames.ffnDown(l)).value, proj, c.dim);
      addInPlace(x, proj);
    }

    this.xOut.set(x);
    this.finalInv = rmsNormInto(x, this.p(tensorNames.outputNorm).value, this.xFinal, N, c.dim, c.normEps);
    const V = c.vocabSize;
    linear(this.xFinal, c.dim, this.p(tensorNames.output).value, this.logits, V);
    const { totalNats, count } = crossEntropy(this.logits, targets, N, V);
    return { totalNats, count, loss: totalNats / count };
  }

  /** Adds d(mean loss)/d(parameter) of the last forward pass to every parameter's `grad`. */
  backward() {
    const c = this.config;
    const { N, qDim, kvDim } = this;
    const { gemm } = this.compute;
    const a = (n: number) => this.compute.alloc(n);
    const V = c.vocabSize;
    const h = c.hiddenDim;

    // logits = xFinal · outputᵀ; this.logits now holds d(loss)/d(logits).
    const out = this.p(tensorNames.output);
    const dxFinal = a(N * c.dim);
    gemm(false, false, N, c.dim, V, this.logits, V, out.value, c.dim, dxFinal, c.dim, false);
    gemm(true, false, V, c.dim, N, this.logits, V, this.xFinal, c.dim, out.grad, c.dim, true);
    const dx = a(N * c.dim);
    const outNorm = this.p(tensorNames.outputNorm);
    rmsNormBackward(this.xOut, outNorm.value, this.finalInv, dxFinal, dx, outNorm.grad, N, c.dim);

    const dHidden = a(N * h);
    const dGate = a(N * h);
    const dUp = a(N * h);
    const dxn = a(N * c.dim);
    const dAttn = a(N * qDim);
    const dq = a(N * qDim);
    const dk = a(N * kvDim);
    const dv = a(N * kvDim);
    for (let l = c.nLayers - 1; l >= 0; l--) {
      const s = this.acts[l];
      // x += hidden · downᵀ, hidden = silu(xn · gateᵀ) ⊙ (xn · upᵀ), xn = rmsnorm(xMid)
      const down = this.p(tensorNames.ffnDown(l));
      gemm(false, false, N, h, c.dim, dx, c.dim, down.value, h, dHidden, h, false);
      gemm(true, false, c.dim, h, N, dx, c.dim, s.hidden, h, down.grad, h, true);
      swigluBackward(s.gate, s.up, dHidden, dGate, dUp);
      const gate = this.p(tensorNames.ffnGate(l));
      const up = this.p(tensorNames.ffnUp(l));
      gemm(false, false, N, c.dim, h, dGate, h, gate.value, c.dim, dxn, c.dim, false);
      gemm(false, false, N, c.dim, h, dUp, h, up.value, c.dim, dxn, c.dim, true);
      gemm(true, false, h, c.dim, N, dGate, h, s.xnFfn, c.dim, gate.grad, c.dim, true);
      gemm(true, false, h, c.dim, N, dUp, h, s.xnFfn, c.dim, up.grad, c.dim, true);
      const ffnNorm = this.p(tensorNames.ffnNorm(l));
      rmsNormBackward(s.xMid, ffnNorm.value, s.ffnInv, dxn, dx, ffnNorm.grad, N, c.dim);

      // x += attn · woᵀ, attn = attention(rope(xn · wqᵀ), rope(xn · wkᵀ), xn · wvᵀ), xn = rmsnorm(xIn)
      const wo = this.p(tensorNames.wo(l));
      gemm(false, false, N, qDim, c.dim, dx, c.dim, wo.value, qDim, dAttn, qDim, false);
      gemm(true, false, c.dim, qDim, N, dx, c.dim, s.attn, qDim, wo.grad, qDim, true);
      this.attentionBackward(s, dAttn, dq, dk, dv);
      rope(dq, N, this.seqLen, c.nHeads, c.headDim, this.tables, true);
      rope(dk, N, this.seqLen, c.nKvHeads, c.headDim, this.tables, true);
      const wq = this.p(tensorNames.wq(l));
      const wk = this.p(tensorNames.wk(l));
      const wv = this.p(tensorNames.wv(l));
      gemm(false, false, N, c.dim, qDim, dq, qDim, wq.value, c.dim, dxn, c.dim, false);
      gemm(false, false, N, c.dim, kvDim, dk, kvDim, wk.value, c.dim, dxn, c.dim, true);
      gemm(false, false, N, c.dim, kvDim, dv, kvDim, wv.value, c.dim, dxn, c.dim, true);
      gemm(true, false, qDim, c.dim, N, dq, qDim, s.xnAttn, c.dim, wq.grad, c.dim, true);
      gemm(true, false, kvDim, c.dim, N, dk, kvDim, s.xnAttn, c.dim, wk.grad, c.dim, true);
      gemm(true, false, kvDim, c.dim, N, dv, kvDim, s.xnAttn, c.dim, wv.grad, c.dim, true);
      const attnNorm = this.p(tensorNames.attnNorm(l));
      rmsNormBackward(s.xIn, attnNorm.value, s.attnInv, dxn, dx, attnNorm.grad, N, c.dim);
    }

    const emb = this.p(tensorNames.tokenEmbedding).grad;
    for (let t = 0; t < N; t++) {
      const row = this.inputs[t] * c.dim;
      for (let i = 0; i < c.dim; i++) emb[row + i] += dx[t * c.dim + i];
    }
  }

  /** attn[b, h] = softmax(q[b, h] · k[b, g]ᵀ / √headDim, causal) · v[b, g], g = the kv head of query head h. */
  private attentionForward(s: LayerActivations) {
    const c = this.config;
    const T = this.seqLen;
    const { qDim, kvDim } = this;
    const group = c.nHeads / c.nKvHeads;
    const scale = 1 / Math.sqrt(c.headDim);
    for (let b = 0; b < this.batchSize; b++) {
      for (let h = 0; h < c.nHeads; h++) {
        const qOff = b * T * qDim + h * c.headDim;
        const kvOff = b * T * kvDim + Math.floor(h / group) * c.headDim;
        const probs = s.probs.subarray((b * c.nHeads + h) * T * T, (b * c.nHeads + h + 1) * T * T);
        this.compute.gemm(
          false,
          true,
          T,
          T,
          c.headDim,
          s.q.subarray(qOff),
          qDim,
          s.k.subarray(kvOff),
          kvDim,
          probs,
          T,
          false,
        );
        causalSoftmax(probs, T, scale);
        this.compute.gemm(
          false,
          false,
          T,
          c.headDim,
          T,
          probs,
          T,
          s.v.subarray(kvOff),
          kvDim,
          s.attn.subarray(qOff),
          qDim,
          false,
        );
      }
    }
  }

  /** From d(attn) to dq, dk, dv (rotated space: RoPE's backward comes after). */
  private attentionBackward(s: LayerActivations, dAttn: Vec, dq: Vec, dk: Vec, dv: Vec) {
    const c = this.config;
    const T = this.seqLen;
    const hd = c.headDim;
    const { qDim, kvDim } = this;
    const { gemm } = this.compute;
    const group = c.nHeads / c.nKvHeads;
    const scale = 1 / Math.sqrt(hd);
    const dScores = this.compute.alloc(T * T);
    dk.fill(0);
    dv.fill(0);
    for (let b = 0; b < this.batchSize; b++) {
      for (let h = 0; h < c.nHeads; h++) {
        const qOff = b * T * qDim + h * hd;
        const kvOff = b * T * kvDim + Math.floor(h / group) * hd;
        const probs = s.probs.subarray((b * c.nHeads + h) * T * T, (b * c.nHeads + h + 1) * T * T);
        const dOut = dAttn.subarray(qOff);
        gemm(false, true, T, T, hd, dOut, qDim, s.v.subarray(kvOff), kvDim, dScores, T, false);
        gemm(true, false, T, hd, T, probs, T, dOut, qDim, dv.subarray(kvOff), kvDim, true);
        causalSoftmaxBackward(probs, dScores, T, scale);
        gemm(false, false, T, hd, T, dScores, T, s.k.subarray(kvOff), kvDim, dq.subarray(qOff), qDim, false);
        gemm(true, false, T, hd, T, dScores, T, s.q.subarray(qOff), qDim, dk.subarray(kvOff), kvDim, true);
      }
    }
  }
}

function addInPlace(a: Vec, b: Vec) {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}

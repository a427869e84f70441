import { type ModelConfig, tensorNames } from "../../model/config.js";
import { dequantize } from "../../model/dtype.js";
import type { LoadedModel } from "../../model/model.js";
import { type Backend, type ForwardBatch, type KvCacheSpec, layerKvSlots, specGroups } from "../backend.js";
import { ropeFactorsTensor } from "../rope-factors.js";
import { addInPlace, geglu, matmul, type RopeParams, rmsNorm, rope, softcap, swiglu } from "./ops.js";
import { allocateKvCache, type KvCacheArray, pagedAttention, writeKv } from "./paged-attention.js";

/** One layer's weights, dequantized to f32. Matrices are [out, in]; optional ones follow the config's switches. */
interface LayerWeights {
  attnNorm: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  qNorm?: Float32Array;
  kNorm?: Float32Array;
  wo: Float32Array;
  postAttnNorm?: Float32Array;
  ffnNorm: Float32Array;
  ffnGate: Float32Array;
  ffnUp: Float32Array;
  ffnDown: Float32Array;
  postFfnNorm?: Float32Array;
  rope: RopeParams;
}

export interface ReferenceBackendOptions {
  /**
   * The longest context the backend serves (the engine's max model length); default the model's maxSeqLen. It
   * picks LongRoPE's short or long frequency factors, as llama.cpp's context size does.
   */
  contextLength?: number;
}

/**
 * The pure-TypeScript forward pass of every architecture ModelConfig describes (the decoder block written out
 * in src/model/config.ts): the exact, slow oracle that every faster backend is tested against. All weights are
 * dequantized to f32 at load; math accumulates in float64.
 */
export class ReferenceBackend implements Backend {
  readonly name = "reference";
  private readonly config: ModelConfig;
  private readonly embedding: Float32Array;
  private readonly layers: LayerWeights[];
  private readonly outputNorm: Float32Array;
  private readonly classifier: Float32Array;
  /** Per slot layer (backend.ts KvCacheSpec). */
  private kCache: KvCacheArray[] = [];
  private vCache: KvCacheArray[] = [];
  /** Per layer: its KV cache group and slot layer. */
  private layerSlots: { group: number; slot: number }[] = [];
  private blockSize = 0;

  constructor(model: LoadedModel, options: ReferenceBackendOptions = {}) {
    const c = model.config;
    const get = (name: string) => {
      const t = model.tensors.get(name);
      if (!t) throw new Error(`model ${model.path} has no tensor ${name}`);
      return dequantize(t);
    };
    const opt = (name: string) => (model.tensors.has(name) ? get(name) : undefined);
    const when = (on: boolean, name: string) => (on ? get(name) : undefined);
    const factors = ropeFactorsTensor(c, options.contextLength ?? c.maxSeqLen);
    const globalRope: RopeParams = {
      dims: c.ropeDims,
      style: c.ropeStyle,
      theta: c.ropeTheta,
      freqFactors: factors === undefined ? undefined : get(factors),
      scaling: c.ropeScaling,
    };
    // Windowed layers with a base of their own take no scaling: freqScale 1 and no divisors (llama.cpp's
    // rope_freq_scale_train_swa; Gemma's local layers).
    const localRope: RopeParams | undefined =
      c.ropeThetaLocal === undefined
        ? undefined
        : {
            dims: c.ropeDims,
            style: c.ropeStyle,
            theta: c.ropeThetaLocal,
            scaling: c.ropeScaling && { ...c.ropeScaling, freqScale: 1 },
          };
    this.config = c;
    this.embedding = get(tensorNames.tokenEmbedding);
    this.outputNorm = get(tensorNames.outputNorm);
    this.classifier = c.tiedEmbeddings ? this.embedding : get(tensorNames.output);
    this.layers = [];
    for (let l = 0; l < c.nLayers; l++) {
      this.layers.push({
        attnNorm: get(tensorNames.attnNorm(l)),
        wq: get(tensorNames.wq(l)),
        wk: get(tensorNames.wk(l)),
        wv: get(tensorNames.wv(l)),
        bq: opt(tensorNames.bq(l)),
        bk: opt(tensorNames.bk(l)),
        bv: opt(tensorNames.bv(l)),
        qNorm: when(c.qkNorm, tensorNames.qNorm(l)),
        kNorm: when(c.qkNorm, tensorNames.kNorm(l)),
        wo: get(tensorNames.wo(l)),
        postAttnNorm: when(c.postNorms, tensorNames.postAttnNorm(l)),
        ffnNorm: get(tensorNames.ffnNorm(l)),
        ffnGate: get(tensorNames.ffnGate(l)),
        ffnUp: get(tensorNames.ffnUp(l)),
        ffnDown: get(tensorNames.ffnDown(l)),
        postFfnNorm: when(c.postNorms, tensorNames.postFfnNorm(l)),
        rope: c.layerWindows[l] > 0 && localRope ? localRope : globalRope,
      });
    }
  }

  initKvCache(spec: KvCacheSpec) {
    const { numBlocks, blockSize, dtype } = spec;
    const size = numBlocks * blockSize * this.config.nKvHeads * this.config.headDim;
    this.layerSlots = layerKvSlots(spec, this.config.nLayers);
    const numSlotLayers = specGroups(spec, this.config.nLayers)[0].layers.length;
    this.kCache = Array.from({ length: numSlotLayers }, () => allocateKvCache(dtype, size));
    this.vCache = Array.from({ length: numSlotLayers }, () => allocateKvCache(dtype, size));
    this.blockSize = blockSize;
  }

  async forward(batch: ForwardBatch): Promise<Float32Array> {
    if (this.blockSize === 0) throw new Error("initKvCache must be called before forward");
    const c = this.config;
    const T = batch.tokenIds.length;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;

    const x = new Float32Array(T * c.dim);
    for (let t = 0; t < T; t++) {
      const id = batch.tokenIds[t];
      for (let i = 0; i < c.dim; i++) x[t * c.dim + i] = this.embedding[id * c.dim + i] * c.embeddingScale;
    }

    for (let l = 0; l < c.nLayers; l++) {
      const w = this.layers[l];
      const xb = rmsNorm(x, w.attnNorm, T, c.dim, c.normEps);
      let q = matmul(xb, w.wq, T, c.dim, qDim, w.bq);
      let k = matmul(xb, w.wk, T, c.dim, kvDim, w.bk);
      const v = matmul(xb, w.wv, T, c.dim, kvDim, w.bv);
      if (w.qNorm && w.kNorm) {
        q = rmsNorm(q, w.qNorm, T * c.nHeads, c.headDim, c.normEps);
        k = rmsNorm(k, w.kNorm, T * c.nKvHeads, c.headDim, c.normEps);
      }
      rope(q, batch.positions, c.nHeads, c.headDim, w.rope);
      rope(k, batch.positions, c.nKvHeads, c.headDim, w.rope);
      const { group, slot } = this.layerSlots[l];
      writeKv(this.kCache[slot], this.vCache[slot], k, v, batch.slotMappings[group], kvDim);
      const attn = pagedAttention(q, this.kCache[slot], this.vCache[slot], batch, group, {
        nHeads: c.nHeads,
        nKvHeads: c.nKvHeads,
        headDim: c.headDim,
        blockSize: this.blockSize,
        scale: c.attentionScale,
        softcap: c.attnSoftcap,
        window: c.layerWindows[l],
      });
      const a = matmul(attn, w.wo, T, qDim, c.dim);
      addInPlace(x, w.postAttnNorm ? rmsNorm(a, w.postAttnNorm, T, c.dim, c.normEps) : a);

      const xf = rmsNorm(x, w.ffnNorm, T, c.dim, c.normEps);
      const gate = matmul(xf, w.ffnGate, T, c.dim, c.hiddenDim);
      const up = matmul(xf, w.ffnUp, T, c.dim, c.hiddenDim);
      if (c.ffnActivation === "gelu_tanh") geglu(gate, up);
      else swiglu(gate, up);
      const f = matmul(gate, w.ffnDown, T, c.hiddenDim, c.dim);
      addInPlace(x, w.postFfnNorm ? rmsNorm(f, w.postFfnNorm, T, c.dim, c.normEps) : f);
    }

    // Logits only for the rows that will be sampled.
    const n = batch.logitsIndices.length;
    const rows = new Float32Array(n * c.dim);
    for (let i = 0; i < n; i++) {
      const t = batch.logitsIndices[i];
      rows.set(x.subarray(t * c.dim, (t + 1) * c.dim), i * c.dim);
    }
    const normed = rmsNorm(rows, this.outputNorm, n, c.dim, c.normEps);
    const logits = matmul(normed, this.classifier, n, c.dim, c.vocabSize);
    if (c.finalLogitSoftcap > 0) softcap(logits, c.finalLogitSoftcap);
    return logits;
  }
}

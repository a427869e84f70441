import { type ModelConfig, tensorNames } from "../../model/config.js";
import { dequantize } from "../../model/dtype.js";
import type { LoadedModel } from "../../model/model.js";
import { type Backend, type ForwardBatch, type KvCacheSpec, layerKvSlots } from "../backend.js";
import { addInPlace, matmul, rmsNorm, rope, swiglu } from "./ops.js";
import { allocateKvCache, type KvCacheArray, pagedAttention, writeKv } from "./paged-attention.js";

/** One layer's weights, dequantized to f32. Matrices are [out, in]. */
interface LayerWeights {
  attnNorm: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  wo: Float32Array;
  ffnNorm: Float32Array;
  ffnGate: Float32Array;
  ffnUp: Float32Array;
  ffnDown: Float32Array;
}

/**
 * The pure-TypeScript Llama-family forward pass (Llama, Qwen2): the exact, slow oracle that every faster
 * backend is tested against. All weights are dequantized to f32 at load; math accumulates in float64.
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

  constructor(model: LoadedModel) {
    const c = model.config;
    const get = (name: string) => {
      const t = model.tensors.get(name);
      if (!t) throw new Error(`model ${model.path} has no tensor ${name}`);
      return dequantize(t);
    };
    const opt = (name: string) => (model.tensors.has(name) ? get(name) : undefined);
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
        wo: get(tensorNames.wo(l)),
        ffnNorm: get(tensorNames.ffnNorm(l)),
        ffnGate: get(tensorNames.ffnGate(l)),
        ffnUp: get(tensorNames.ffnUp(l)),
        ffnDown: get(tensorNames.ffnDown(l)),
      });
    }
  }

  initKvCache(spec: KvCacheSpec) {
    const { numBlocks, blockSize, dtype } = spec;
    const size = numBlocks * blockSize * this.config.nKvHeads * this.config.headDim;
    this.layerSlots = layerKvSlots(spec, this.config.nLayers);
    const numSlotLayers = this.config.nLayers / new Set(this.layerSlots.map((s) => s.group)).size;
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
      x.set(this.embedding.subarray(id * c.dim, (id + 1) * c.dim), t * c.dim);
    }

    for (let l = 0; l < c.nLayers; l++) {
      const w = this.layers[l];
      const xb = rmsNorm(x, w.attnNorm, T, c.dim, c.normEps);
      const q = matmul(xb, w.wq, T, c.dim, qDim, w.bq);
      const k = matmul(xb, w.wk, T, c.dim, kvDim, w.bk);
      const v = matmul(xb, w.wv, T, c.dim, kvDim, w.bv);
      rope(q, batch.positions, c.nHeads, c.headDim, c.ropeTheta, c.ropeStyle);
      rope(k, batch.positions, c.nKvHeads, c.headDim, c.ropeTheta, c.ropeStyle);
      const { group, slot } = this.layerSlots[l];
      writeKv(this.kCache[slot], this.vCache[slot], k, v, batch.slotMappings[group], kvDim);
      const attn = pagedAttention(q, this.kCache[slot], this.vCache[slot], batch, group, {
        nHeads: c.nHeads,
        nKvHeads: c.nKvHeads,
        headDim: c.headDim,
        blockSize: this.blockSize,
        window: c.layerWindows[l],
      });
      addInPlace(x, matmul(attn, w.wo, T, qDim, c.dim));

      const xf = rmsNorm(x, w.ffnNorm, T, c.dim, c.normEps);
      const gate = matmul(xf, w.ffnGate, T, c.dim, c.hiddenDim);
      swiglu(gate, matmul(xf, w.ffnUp, T, c.dim, c.hiddenDim));
      addInPlace(x, matmul(gate, w.ffnDown, T, c.hiddenDim, c.dim));
    }

    // Logits only for the rows that will be sampled.
    const n = batch.logitsIndices.length;
    const rows = new Float32Array(n * c.dim);
    for (let i = 0; i < n; i++) {
      const t = batch.logitsIndices[i];
      rows.set(x.subarray(t * c.dim, (t + 1) * c.dim), i * c.dim);
    }
    const normed = rmsNorm(rows, this.outputNorm, n, c.dim, c.normEps);
    return matmul(normed, this.classifier, n, c.dim, c.vocabSize);
  }
}

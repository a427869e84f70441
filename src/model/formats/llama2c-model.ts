import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type ModelConfig, plainConfig, tensorNames } from "../config.js";
import { InputError } from "../errors.js";
import type { LoadedModel } from "../model.js";
import type { Tensor } from "../tensor.js";
import { createTokenizer } from "../tokenizer/create.js";
import { loadLlama2cTokenizer } from "../tokenizer/llama2c-tokenizer.js";

const headerBytes = 7 * 4;

/**
 * llama2.c legacy (v0) checkpoint: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len),
 * then f32 arrays, row-major [out, in]: token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim],
 * wk [L, kvDim, dim], wv [L, kvDim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim],
 * w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim], freq_cis_real/imag [seq_len, headDim/2] (unused:
 * we compute RoPE), then wcls [vocab, dim] only when vocab_size is negative (untied classifier).
 * The tokenizer lives in a separate tokenizer.bin (`tokenizerPath`, default: tokenizer.bin beside the model).
 */
export function loadLlama2cModel(path: string, tokenizerPath?: string): LoadedModel {
  const fileSize = statSync(path).size;
  if (fileSize < headerBytes)
    throw new InputError(`${path}: truncated llama2.c checkpoint (${fileSize} bytes, header needs 28)`);
  const file = readFileSync(path);
  const header = new Int32Array(file.buffer, file.byteOffset, 7);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = header;
  const vocabSize = Math.abs(signedVocab);
  const tied = signedVocab > 0;
  const sane = (v: number) => v > 0 && v < 1 << 20;
  if (
    ![dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen].every(sane) ||
    dim % nHeads ||
    nHeads % nKvHeads
  ) {
    throw new InputError(
      `${path}: not a llama2.c checkpoint (header dim=${dim} hidden=${hiddenDim} layers=${nLayers} heads=${nHeads} kv_heads=${nKvHeads} vocab=${signedVocab} seq_len=${seqLen})`,
    );
  }
  const headDim = dim / nHeads;
  const kvDim = nKvHeads * headDim;
  const config: ModelConfig = plainConfig({
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    maxSeqLen: seqLen,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeStyle: "interleaved",
    tiedEmbeddings: tied,
    attentionBias: false,
  });

  const perLayer = (rows: number, cols: number) => nLayers * rows * cols;
  const weightFloats =
    vocabSize * dim +
    perLayer(1, dim) * 2 +
    perLayer(dim, dim) * 2 +
    perLayer(kvDim, dim) * 2 +
    perLayer(hiddenDim, dim) * 3 +
    dim +
    seqLen * headDim +
    (tied ? 0 : vocabSize * dim);
  const expected = headerBytes + weightFloats * 4;
  if (fileSize !== expected) {
    throw new InputError(
      `${path}: size ${fileSize} bytes, but its header describes a ${expected}-byte llama2.c checkpoint`,
    );
  }

  const tensors = new Map<string, Tensor>();
  let offset = headerBytes;
  const take = (shape: number[]) => {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    const data = new Uint8Array(file.buffer, file.byteOffset + offset, bytes);
    offset += bytes;
    return data;
  };
  const perLayerTensor = (name: (l: number) => string, shape: number[]) => {
    for (let l = 0; l < nLayers; l++) tensors.set(name(l), { dtype: "f32", shape, data: take(shape) });
  };
  tensors.set(tensorNames.tokenEmbedding, {
    dtype: "f32",
    shape: [vocabSize, dim],
    data: take([vocabSize, dim]),
  });
  perLayerTensor(tensorNames.attnNorm, [dim]);
  perLayerTensor(tensorNames.wq, [dim, dim]);
  perLayerTensor(tensorNames.wk, [kvDim, dim]);
  perLayerTensor(tensorNames.wv, [kvDim, dim]);
  perLayerTensor(tensorNames.wo, [dim, dim]);
  perLayerTensor(tensorNames.ffnNorm, [dim]);
  perLayerTensor(tensorNames.ffnGate, [hiddenDim, dim]);
  perLayerTensor(tensorNames.ffnDown, [dim, hiddenDim]);
  perLayerTensor(tensorNames.ffnUp, [hiddenDim, dim]);
  tensors.set(tensorNames.outputNorm, { dtype: "f32", shape: [dim], data: take([dim]) });
  take([seqLen, headDim]); // freq_cis_real and freq_cis_imag, each [seqLen, headDim / 2]
  if (!tied)
    tensors.set(tensorNames.output, { dtype: "f32", shape: [vocabSize, dim], data: take([vocabSize, dim]) });

  const tokPath = tokenizerPath ?? join(dirname(path), "tokenizer.bin");
  if (!existsSync(tokPath)) {
    throw new InputError(
      `${path}: a llama2.c checkpoint needs its tokenizer.bin: pass --tokenizer PATH (${tokPath} not found)`,
    );
  }
  const vocab = loadLlama2cTokenizer(tokPath, vocabSize);
  return {
    config,
    tensors,
    tokenizer: createTokenizer(vocab, tokPath),
    vocab,
    name: basename(path).replace(/\.bin$/, ""),
    format: "llama2c",
    path,
  };
}

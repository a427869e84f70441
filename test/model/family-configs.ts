/**
 * Small models of every supported family, each with its family's switches as llama.cpp sets them (Llama 3 RoPE
 * factors, Qwen 2 biases, Qwen 3 q/k norms, Gemma 2/3 windows, soft-caps and post-norms, Phi-3 partial rotary
 * and LongRoPE …): the real shapes are large, and format tests only need the switches.
 */
import { type Architecture, type ModelConfig, plainConfig, tensorNames } from "../../src/model/config.js";
import { shortestFloat32 } from "../../src/model/float-formats.js";
import { gemmaAttentionScale } from "../../src/model/formats/gguf-config.js";
import type { LoadedModel } from "../../src/model/model.js";
import { llama3RopeFreqs, longRopeAttnFactor, yarnAttnFactor } from "../../src/model/rope-scaling.js";
import { syntheticModelOf } from "../../src/model/synth/synth-model.js";
import type { DType } from "../../src/model/tensor.js";

export interface Family {
  /** A name for messages: the architecture, or e.g. "llama-yarn" for a variant. */
  name: string;
  config: ModelConfig;
  ropeFactors: Map<string, Float32Array>;
}

const base = plainConfig({
  dim: 64,
  hiddenDim: 128,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 16,
  vocabSize: 300,
  maxSeqLen: 256,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeStyle: "neox",
  tiedEmbeddings: false,
  attentionBias: false,
});

function withWindows(nLayers: number, period: number, window: number): number[] {
  return Array.from({ length: nLayers }, (_, l) => (l % period < period - 1 ? window : 0));
}

function gemma(arch: Architecture, fields: Partial<ModelConfig>): ModelConfig {
  const c = { ...base, architecture: arch, headDim: 32, ropeDims: 32, ...fields } as ModelConfig;
  return {
    ...c,
    tiedEmbeddings: true,
    postNorms: true,
    ffnActivation: "gelu_tanh",
    embeddingScale: Math.sqrt(c.dim),
    attentionScale: gemmaAttentionScale(c, arch),
  };
}

/** The families, one small model each (two extra llama variants for linear and YaRN scaling). */
export function families(): Family[] {
  const llama3 = { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 };
  const phi3Factors = (scale: number) => Float32Array.from({ length: 6 }, (_, i) => 1 + scale * i);
  return [
    {
      name: "llama",
      config: {
        ...base,
        ropeStyle: "interleaved",
        ropeTheta: 500000,
        ropeFreqFactors: "fixed",
        tiedEmbeddings: true,
      },
      ropeFactors: new Map([[tensorNames.ropeFreqs, llama3RopeFreqs(llama3, 500000, 16)]]),
    },
    {
      name: "llama-linear",
      config: {
        ...base,
        ropeStyle: "interleaved",
        ropeScaling: {
          freqScale: 0.25,
          extFactor: 0,
          attnFactor: 1,
          betaFast: 32,
          betaSlow: 1,
          originalContext: 256,
        },
      },
      ropeFactors: new Map(),
    },
    {
      name: "llama-yarn",
      config: {
        ...base,
        ropeStyle: "interleaved",
        ropeScaling: {
          freqScale: 0.25,
          extFactor: 1,
          attnFactor: yarnAttnFactor(4, 1),
          betaFast: 32,
          betaSlow: 1,
          originalContext: 64,
        },
      },
      ropeFactors: new Map(),
    },
    {
      name: "qwen2",
      config: {
        ...base,
        architecture: "qwen2",
        normEps: 1e-6,
        ropeTheta: 1000000,
        tiedEmbeddings: true,
        attentionBias: true,
      },
      ropeFactors: new Map(),
    },
    {
      name: "qwen3",
      config: {
        ...base,
        architecture: "qwen3",
        headDim: 32,
        ropeDims: 32,
        attentionScale: 1 / Math.sqrt(32),
        normEps: 1e-6,
        ropeTheta: 1000000,
        qkNorm: true,
      },
      ropeFactors: new Map(),
    },
    {
      name: "gemma2",
      config: gemma("gemma2", {
        nLayers: 3,
        normEps: 1e-6,
        layerWindows: withWindows(3, 2, 8),
        ropeThetaLocal: 10000,
        attnSoftcap: 50,
        finalLogitSoftcap: 30,
      }),
      ropeFactors: new Map(),
    },
    {
      name: "gemma3",
      config: gemma("gemma3", {
        nLayers: 7,
        nKvHeads: 1,
        normEps: 1e-6,
        ropeTheta: 1000000,
        ropeThetaLocal: 10000,
        ropeScaling: {
          freqScale: 0.125,
          extFactor: 0,
          attnFactor: 1,
          betaFast: 32,
          betaSlow: 1,
          originalContext: 256,
        },
        layerWindows: withWindows(7, 6, 16),
        qkNorm: true,
        finalLogitSoftcap: 0,
      }),
      ropeFactors: new Map(),
    },
    {
      name: "phi3",
      config: {
        ...base,
        architecture: "phi3",
        ropeDims: 12,
        ropeFreqFactors: "longrope",
        ropeScaling: {
          freqScale: 1,
          extFactor: 0,
          attnFactor: shortestFloat32(longRopeAttnFactor(256, 64)),
          betaFast: 32,
          betaSlow: 1,
          originalContext: 64,
        },
      },
      ropeFactors: new Map([
        [tensorNames.ropeFactorsShort, phi3Factors(0.25)],
        [tensorNames.ropeFactorsLong, phi3Factors(4)],
      ]),
    },
  ];
}

export function familyModel(family: Family, dtype: DType, seed = 1): LoadedModel {
  return syntheticModelOf(family.config, dtype, { seed, name: family.name, ropeFactors: family.ropeFactors });
}

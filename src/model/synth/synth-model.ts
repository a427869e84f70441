import { Rng } from "../../util/rng.js";
import { expectedTensors, type ModelConfig } from "../config.js";
import { quantize } from "../dtype.js";
import { InputError } from "../errors.js";
import { storedDTypes } from "../formats/gguf-model.js";
import type { LoadedModel, TensorProgress } from "../model.js";
import { shapeConfig, shapeSpec } from "../profiles.js";
import type { WeightType } from "../quant/mixes.js";
import type { Tensor } from "../tensor.js";
import { createTokenizer } from "../tokenizer/create.js";
import { vocabFromTokenizerJson } from "../tokenizer/hf-convert.js";
import { readHfTokenizerFiles } from "../tokenizer/hf-tokenizer.js";
import { isPhi3Name, phi3NamedTokens, withStripByName } from "../tokenizer/strip-by-name.js";
import type { VocabSpec } from "../tokenizer/tokenizer.js";
import { syntheticVocab } from "./synth-vocab.js";

/** Weights are uniform in ±√3·std (std 0.02, like common initializations), so activations stay finite. */
const weightStd = 0.02;
/** Norm weights are uniform in 1 ± this (GGUF's convention, also for Gemma: the weight itself multiplies). */
const normSpread = 0.1;

/** A real model's tokenizer to put in a synthetic model (what `synth-model --tokenizer` reads). */
export interface SyntheticTokenizer {
  /** Exactly as many tokens as the shape's vocabulary size (vocabFromTokenizerJson pads it so). */
  vocab: VocabSpec;
  chatTemplate?: string;
}

/** The HF tokenizer at `path` (a directory or tokenizer.json) as llama.cpp's converter writes it for `shape`. */
export function realTokenizer(path: string, shape: string): SyntheticTokenizer {
  const { json, config, jsonPath, chatTemplate } = readHfTokenizerFiles(path);
  const vocabSize = shapeConfig(shape).vocabSize;
  return { vocab: vocabFromTokenizerJson(json, config, jsonPath, { vocabSize }), chatTemplate };
}

/**
 * A model of a real architecture's shape (profiles/models.json) with seeded random weights, held in
 * `dtype` (norm weights near 1, in f32; RoPE factor tensors with the values the shape's rope_scaling gives), and
 * a generated vocabulary or a real `tokenizer`. `layers` cuts the depth, keeping the family's layer pattern.
 * Speed does not depend on weight values, so this is what the speed benchmarks run on; its text is gibberish by
 * construction.
 */
export function syntheticModel(
  shape: string,
  dtype: WeightType,
  seed = 0,
  opts: {
    layers?: number;
    tokenizer?: SyntheticTokenizer;
    onProgress?: TensorProgress;
  } = {},
): LoadedModel {
  const { config, ropeFactors } = shapeSpec(shape, opts.layers);
  return syntheticModelOf(config, dtype, {
    seed,
    name: shape,
    ropeFactors,
    tokenizer: opts.tokenizer,
    onProgress: opts.onProgress,
  });
}

export interface SyntheticModelOptions {
  seed?: number;
  /** Shown as the model's name ("<name>-synthetic") and path ("synthetic:<name>"). */
  name?: string;
  /** Values of the RoPE factor tensors the config needs (rope_freqs, rope_factors_long/short). */
  ropeFactors?: ReadonlyMap<string, Float32Array>;
  /** A real vocabulary and chat template instead of a generated SentencePiece vocabulary of the config's size. */
  tokenizer?: SyntheticTokenizer;
  onProgress?: TensorProgress;
}

/** Seeded random weights for every tensor `config` needs, and a vocabulary of its size. */
export function syntheticModelOf(
  config: ModelConfig,
  dtype: WeightType,
  opts: SyntheticModelOptions = {},
): LoadedModel {
  const name = opts.name ?? config.architecture;
  const modelName = `${name}-synthetic`;
  // The vocabulary as llama.cpp will read it from the written GGUF: with the tokens and the whitespace
  // stripping its name calls for (Phi-3's).
  const generated = () => syntheticVocab(config.vocabSize, isPhi3Name(modelName) ? phi3NamedTokens : []);
  const vocab = withStripByName(opts.tokenizer?.vocab ?? generated(), modelName, `synthetic ${name}`);
  if (vocab.tokens.length !== config.vocabSize) {
    throw new InputError(
      `the tokenizer has ${vocab.tokens.length} tokens but the ${name} shape has a vocabulary of ${config.vocabSize}`,
    );
  }
  const rng = new Rng(opts.seed ?? 0);
  const uniform = (bound: number) => (rng.nextUint32() / 2 ** 31 - 1) * bound;
  const bound = Math.sqrt(3) * weightStd;
  const tensors = new Map<string, Tensor>();
  const types = storedDTypes(config, dtype);
  const expected = expectedTensors(config);
  for (const [tensorName, shape] of expected) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const fixed = opts.ropeFactors?.get(tensorName);
    if (fixed) {
      values.set(fixed);
    } else if (tensorName.startsWith("rope_")) {
      throw new InputError(`synthetic ${name}: no values for ${tensorName}`);
    } else if (tensorName.endsWith("norm.weight")) {
      for (let i = 0; i < values.length; i++) values[i] = 1 + uniform(normSpread);
    } else {
      for (let i = 0; i < values.length; i++) values[i] = uniform(bound);
    }
    tensors.set(tensorName, quantize(values, shape, types.get(tensorName) ?? "f32"));
    opts.onProgress?.(tensors.size, expected.size);
  }
  return {
    config,
    tensors,
    tokenizer: createTokenizer(vocab, `synthetic ${name}`),
    vocab,
    chatTemplate: opts.tokenizer?.chatTemplate,
    name: modelName,
    format: "gguf",
    path: `synthetic:${name}`,
  };
}

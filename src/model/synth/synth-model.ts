import { Rng } from "../../util/rng.js";
import { expectedTensors, type ModelConfig } from "../config.js";
import { quantize } from "../dtype.js";
import { InputError } from "../errors.js";
import { storedDType } from "../formats/gguf-model.js";
import type { LoadedModel } from "../model.js";
import { shapeConfig } from "../profiles.js";
import type { DType, Tensor } from "../tensor.js";
import { createTokenizer } from "../tokenizer/create.js";
import type { VocabSpec } from "../tokenizer/tokenizer.js";
import { syntheticVocab } from "./synth-vocab.js";

/** Weights are uniform in ±√3·std (std 0.02, like common initializations), so activations stay finite. */
const weightStd = 0.02;

/** A real model's tokenizer to put in a synthetic model (what `synth-model --tokenizer` reads). */
export interface SyntheticTokenizer {
  /** Exactly as many tokens as the shape's vocabulary size (vocabFromTokenizerJson pads it so). */
  vocab: VocabSpec;
  chatTemplate?: string;
}

/**
 * A model of a real architecture's shape (profiles/models.json, or a config) with seeded random weights,
 * held in `dtype` (norm weights are 1, in f32), and a generated vocabulary or a real `tokenizer`. Speed does
 * not depend on weight values, so this is what the speed benchmarks run on; its text is gibberish by
 * construction.
 */
export function syntheticModel(
  shape: string | ModelConfig,
  dtype: DType,
  seed = 0,
  tokenizer?: SyntheticTokenizer,
): LoadedModel {
  const config = typeof shape === "string" ? shapeConfig(shape) : shape;
  const shapeName = typeof shape === "string" ? shape : shape.architecture;
  const vocab = tokenizer?.vocab ?? syntheticVocab(config.vocabSize);
  if (vocab.tokens.length !== config.vocabSize) {
    throw new InputError(
      `the tokenizer has ${vocab.tokens.length} tokens but the ${shapeName} shape has a vocabulary of ${config.vocabSize}`,
    );
  }
  const rng = new Rng(seed);
  const bound = Math.sqrt(3) * weightStd;
  const tensors = new Map<string, Tensor>();
  for (const [name, tensorShape] of expectedTensors(config)) {
    const values = new Float32Array(tensorShape.reduce((a, b) => a * b, 1));
    if (tensorShape.length === 1) values.fill(1);
    else for (let i = 0; i < values.length; i++) values[i] = (rng.nextUint32() / 2 ** 31 - 1) * bound;
    tensors.set(name, quantize(values, tensorShape, storedDType(tensorShape, dtype)));
  }
  return {
    config,
    tensors,
    tokenizer: createTokenizer(vocab, `synthetic ${shapeName}`),
    vocab,
    chatTemplate: tokenizer?.chatTemplate,
    name: `${shapeName}-synthetic`,
    format: "gguf",
    path: `synthetic:${shapeName}`,
  };
}

import type { ModelConfig } from "../model/config.js";
import { quantize } from "../model/dtype.js";
import type { LoadedModel } from "../model/model.js";
import { tensorType } from "../model/quant/mixes.js";
import type { Tensor } from "../model/tensor.js";
import { createTokenizer } from "../model/tokenizer/create.js";
import type { VocabSpec } from "../model/tokenizer/tokenizer.js";
import type { ParamSet } from "./params.js";

/** The trained parameters as a LoadedModel (2-D weights in `dtype`, norms f32), as every loader produces. */
export function trainedModel(
  config: ModelConfig,
  params: ParamSet,
  vocab: VocabSpec,
  name: string,
  dtype: "f32" | "f16",
): LoadedModel {
  const tensors = new Map<string, Tensor>();
  for (const p of params.values()) {
    tensors.set(
      p.name,
      quantize(Float32Array.from(p.value), p.shape, tensorType(dtype, p.name, p.shape, config)),
    );
  }
  return {
    config,
    tensors,
    tokenizer: createTokenizer(vocab, name),
    vocab,
    name,
    format: "gguf",
    path: name,
  };
}

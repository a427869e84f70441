import type { ModelConfig } from "./config.js";
import type { Tensor } from "./tensor.js";
import type { Tokenizer, VocabSpec } from "./tokenizer/tokenizer.js";

export type ModelFormat = "gguf" | "safetensors" | "llama2c";

/** What every loader produces: the architecture, the weights by canonical (GGUF) name, and the tokenizer. */
export interface LoadedModel {
  config: ModelConfig;
  tensors: Map<string, Tensor>;
  tokenizer: Tokenizer;
  /** The tokenizer as data, when the format carries it that way (GGUF, llama2.c); used to write GGUF. */
  vocab?: VocabSpec;
  /** Jinja chat template from the model files, if any. */
  chatTemplate?: string;
  /** A name to report (general.name, the directory name, …). */
  name: string;
  format: ModelFormat;
  path: string;
}

/** Told, after each tensor of a model is read or made, how many are done of how many (the CLI's progress bars). */
export type TensorProgress = (done: number, total: number) => void;

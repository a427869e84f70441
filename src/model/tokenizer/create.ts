import { InputError, showFileValue } from "../errors.js";
import { ByteLevelBpeTokenizer } from "./byte-bpe.js";
import { SentencePieceTokenizer } from "./sentencepiece.js";
import type { Tokenizer, VocabSpec } from "./tokenizer.js";

/**
 * Turns a tokenizer-as-data (from GGUF or llama2.c) into a Tokenizer. `source` names the file it came
 * from, for error messages.
 */
export function createTokenizer(spec: VocabSpec, source = "tokenizer"): Tokenizer {
  switch (spec.model) {
    case "llama":
      return new SentencePieceTokenizer(spec, source);
    case "gpt2":
      return new ByteLevelBpeTokenizer(spec, source);
    default:
      throw new InputError(
        `${source}: unsupported tokenizer model ${showFileValue((spec as { model: unknown }).model)} (supported: llama, gpt2)`,
      );
  }
}

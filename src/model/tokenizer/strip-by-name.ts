import { InputError, quoteFileString } from "../errors.js";
import { isEndOfGenerationText } from "./end-of-generation.js";
import { sentencePieceTokenTypes } from "./sentencepiece.js";
import { TokenType, type VocabSpec } from "./tokenizer.js";

/**
 * The whitespace stripping llama.cpp gives a GGUF vocabulary by the model's name (llama_vocab::impl::load).
 * GGUF cannot hold tokenizer.json's rstrip/lstrip flags, yet Phi-3's chat markup (<|user|>, <|end|>, …) swallows
 * the newline after it; so when general.name, lower-cased, contains "phi-3" or "phi3", llama.cpp sets RSTRIP on
 * every special token and </s>, except <unk>, <s> and <|endoftext|>. (Its other name rules set LSTRIP on the
 * <mask> of architectures vellum does not load.)
 */

/** The tokens llama.cpp looks up by text in a model it takes for Phi-3: a vocabulary without one fails to load. */
export const phi3NamedTokens = ["<unk>", "<s>", "</s>", "<|endoftext|>"];

/** Whether llama.cpp takes a model of this general.name for Phi-3 (lower-cased as C's tolower: ASCII only). */
export function isPhi3Name(name: string): boolean {
  const lower = name.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return lower.includes("phi-3") || lower.includes("phi3");
}

/**
 * `spec` with the strip attributes llama.cpp gives it in a GGUF whose general.name is `name`, and no others.
 * A Phi-3 name on a vocabulary that lacks one of phi3NamedTokens is refused, as llama.cpp refuses it;
 * `source` names the file, for the message.
 */
export function withStripByName(spec: VocabSpec, name: string | undefined, source: string): VocabSpec {
  const { rstripIds: _rstrip, lstripIds: _lstrip, ...unstripped } = spec;
  if (name === undefined || !isPhi3Name(name)) return unstripped;
  // llama.cpp's token_to_id keeps the last id of a text that occurs twice.
  const idOf = (token: string) => spec.tokens.lastIndexOf(token);
  const missing = phi3NamedTokens.find((token) => idOf(token) < 0);
  if (missing !== undefined) {
    throw new InputError(
      `${source}: general.name ${quoteFileString(name)} makes llama.cpp take the model for Phi-3 and look up its token ${quoteFileString(missing)}, which the vocabulary lacks`,
    );
  }
  const types = spec.model === "llama" ? sentencePieceTokenTypes(spec) : (spec.tokenTypes ?? []);
  // The tokens of llama.cpp's special-token cache: control (also by end-of-generation text), user-defined, unknown.
  const special = (token: string, id: number) =>
    types[id] === TokenType.control ||
    types[id] === TokenType.userDefined ||
    types[id] === TokenType.unknown ||
    isEndOfGenerationText(token);
  const kept = new Set(["<unk>", "<s>", "<|endoftext|>"].map(idOf));
  const endOfSentence = idOf("</s>");
  const rstripIds = spec.tokens
    .map((token, id) => (special(token, id) || id === endOfSentence) && !kept.has(id))
    .flatMap((strips, id) => (strips ? [id] : []));
  return { ...unstripped, rstripIds };
}

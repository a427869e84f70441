import fc from "fast-check";
import { byteToChar } from "../src/model/tokenizer/byte-unicode.js";
import { TokenType, type VocabSpec } from "../src/model/tokenizer/tokenizer.js";

/** Hand-built vocabularies shared by the tokenizer tests. */

/**
 * Byte-level BPE: ids 0..255 are the GPT-2 characters of bytes 0..255, then one token per merge (in merge
 * order), then special tokens: BOS, <|im_start|>, EOS (control) and <|user_tag|> (user-defined).
 * "Ġ" is the byte character of a space.
 */
export const byteLevelMerges = [
  "Ġ t", // Ġt
  "h e", // he
  "Ġt he", // Ġthe
  "l l", // ll
  "e ll", // ell
  "h ell", // hell (unreachable by merges from "hell": h e merges first)
  "3 4", // 34
  "1 2", // 12
  "12 3", // 123
  "' S", // 'S
];
export const byteLevelSpecials = ["<|begin_of_text|>", "<|im_start|>", "<|im_end|>", "<|user_tag|>"];
export const byteLevelFirstSpecial = 256 + byteLevelMerges.length;

export function tinyByteLevelSpec(pre?: string): VocabSpec {
  const tokens = [...byteToChar, ...byteLevelMerges.map((m) => m.replace(" ", "")), ...byteLevelSpecials];
  return {
    model: "gpt2",
    tokens,
    tokenTypes: tokens.map((_, id) => {
      if (id < byteLevelFirstSpecial) return TokenType.normal;
      return id === byteLevelFirstSpecial + 3 ? TokenType.userDefined : TokenType.control;
    }),
    merges: byteLevelMerges,
    pre,
    bosId: byteLevelFirstSpecial,
    eosId: byteLevelFirstSpecial + 2,
    addBos: true,
    addEos: false,
  };
}

/**
 * Text of the kind an attacker writes: the special-token spellings of the fixtures and the bundled model mixed with
 * words, chat markup and whitespace.
 */
export const hostileText = fc
  .array(
    fc.constantFrom(
      "<s>",
      "</s>",
      "<unk>",
      "<|im_start|>",
      "<|im_end|>",
      "<|begin_of_text|>",
      "<|user_tag|>",
      "[INST]",
      "[/INST]",
      "<<SYS>>",
      "system\n",
      "assistant",
      "Hi",
      " the",
      "<",
      "|>",
      " ",
      "\n",
      "é",
    ),
    { maxLength: 12 },
  )
  .map((pieces) => pieces.join(""));

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { InputError } from "../../src/model/errors.js";
import { ByteLevelBpeTokenizer } from "../../src/model/tokenizer/byte-bpe.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import {
  byteLevelFirstSpecial as first,
  byteLevelMerges as merges,
  byteLevelSpecials as specials,
  tinyByteLevelSpec as tinySpec,
} from "../tokenizer-fixtures.js";

const bpe = (pre?: string) => new ByteLevelBpeTokenizer(tinySpec(pre));
const pieces = (tok: ByteLevelBpeTokenizer, text: string) =>
  tok.encode(text, { addSpecial: false }).map((id) => tok.idToToken(id));

describe("ByteLevelBpeTokenizer on a hand-built vocabulary", () => {
  test("merges by rank inside each pre-tokenized word (hand-computed)", () => {
    const tok = bpe("gpt-2");
    // "hello": h e (rank 1) before l l (rank 3) → [he, l, l, o] → [he, ll, o]; "he ll" is no merge.
    // " the": Ġ t (0) → Ġt; h e (1) → he; Ġt he (2) → Ġthe.
    expect(pieces(tok, "hello the")).toEqual(["he", "ll", "o", "Ġthe"]);
    // "ell": only l l, then e ll.
    expect(pieces(tok, "ell")).toEqual(["ell"]);
    expect(tok.encode("the")).toEqual([first, "t".charCodeAt(0), 256 + merges.indexOf("h e")]);
  });

  test("the pre-tokenizer pattern follows `pre`", () => {
    // GPT-2: "1234" is one word; 3 4 (rank 6) beats 1 2 (rank 7) → [12, 34].
    expect(pieces(bpe("gpt-2"), "1234")).toEqual(["12", "34"]);
    // Llama 3: digits in groups of three → "123" + "4".
    expect(pieces(bpe("llama-bpe"), "1234")).toEqual(["123", "4"]);
    // Qwen2: one digit per word.
    expect(pieces(bpe("qwen2"), "1234")).toEqual(["1", "2", "3", "4"]);
    // Contractions: Llama 3 matches 'S case-insensitively as one word; GPT-2 splits ' from S.
    expect(pieces(bpe("llama-bpe"), "it'S")).toEqual(["i", "t", "'S"]);
    expect(pieces(bpe("gpt-2"), "it'S")).toEqual(["i", "t", "'", "S"]);
    // SmolLM: every digit alone, then GPT-2's pattern; GPT-4o: groups of three, like Llama 3.
    expect(pieces(bpe("smollm"), "1234 it'S")).toEqual(["1", "2", "3", "4", "Ġ", "i", "t", "'", "S"]);
    expect(pieces(bpe("gpt-4o"), "1234")).toEqual(["123", "4"]);
    // GPT-4o's words: upper-case letters then lower-case ones, a contraction attached.
    expect(pieces(bpe("gpt-4o"), "it'S")).toEqual(["i", "t", "'S"]);
  });

  test("Llama 3 takes a word that is itself a token whole (ignore_merges)", () => {
    expect(pieces(bpe("llama-bpe"), "hell")).toEqual(["hell"]);
    expect(pieces(bpe("gpt-2"), "hell")).toEqual(["he", "ll"]);
  });

  test("spaces, newlines and non-ASCII text become byte characters", () => {
    const tok = bpe("gpt-2");
    expect(pieces(tok, "a\nb")).toEqual(["a", "Ċ", "b"]);
    // é is C3 A9: GPT-2 characters Ã (U+00C3) and © (U+00A9).
    expect(pieces(tok, "é")).toEqual(["Ã", "©"]);
  });

  test("special tokens are matched before pre-tokenization and decode as their text", () => {
    const tok = bpe("llama-bpe");
    const ids = tok.encode("<|im_start|>user\nhi<|im_end|>");
    expect(ids[0]).toBe(first); // BOS
    expect(ids[1]).toBe(first + 1);
    expect(ids.at(-1)).toBe(first + 2);
    expect(tok.decode(ids)).toBe("user\nhi");
    expect(tok.decode(ids, { skipSpecial: false })).toBe("<|begin_of_text|><|im_start|>user\nhi<|im_end|>");
    // User-defined tokens are kept by decode.
    expect(tok.decode(tok.encode("a<|user_tag|>b"))).toBe("a<|user_tag|>b");
    expect(tok.stopIds).toEqual([first + 2]);
  });

  test("decode(encode(x)) == x for arbitrary Unicode text, every pattern", () => {
    const text = fc
      .string({ unit: "binary", maxLength: 40 })
      .filter((s) => !specials.some((t) => s.includes(t)));
    for (const pre of ["gpt-2", "llama-bpe", "qwen2", "gpt-4o", "smollm", "default"]) {
      const tok = bpe(pre);
      fc.assert(
        fc.property(text, (s) => {
          expect(tok.decode(tok.encode(s))).toBe(s);
        }),
      );
    }
  });

  test("malformed vocabularies are InputErrors naming the source", () => {
    const spec = tinySpec();
    expect(() =>
      createTokenizer({ ...spec, tokens: spec.tokens.slice(1), tokenTypes: undefined }, "q.gguf"),
    ).toThrow(/^q\.gguf: byte-level vocabulary lacks the token for byte 0x00$/);
    expect(() => createTokenizer({ ...spec, merges: ["a b c"] }, "q.gguf")).toThrow(
      /^q\.gguf: merge 0 "a b c" is not two tokens separated by one space$/,
    );
    expect(() => bpe("gpt-2").decode([100000])).toThrow(InputError);
    expect(() => createTokenizer({ ...spec, pre: "no-such-pre" }, "q.gguf")).toThrow(
      /^q\.gguf: tokenizer\.ggml\.pre "no-such-pre" is not a supported pre-tokenizer \(supported: llama3, /,
    );
  });
});

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import {
  HfTokenizer,
  tokenizerConfigFromVocab,
  tokenizerJsonFromVocab,
} from "../../src/model/tokenizer/hf-tokenizer.js";
import type { TextPart, VocabSpec } from "../../src/model/tokenizer/tokenizer.js";
import { byteLevelFirstSpecial, hostileText, tinyByteLevelSpec } from "../tokenizer-fixtures.js";

const sentencePieceSpec = loadModel(bundledModelPath).vocab as VocabSpec;
const byteLevelSpec = tinyByteLevelSpec("llama-bpe");

const parts = fc.array(fc.record({ text: hostileText, parseSpecial: fc.boolean() }), {
  maxLength: 5,
}) as fc.Arbitrary<TextPart[]>;

describe.each([
  { name: "SentencePiece (the demo model)", spec: sentencePieceSpec, eos: "</s>" },
  { name: "byte-level BPE", spec: byteLevelSpec, eos: "<|im_end|>" },
])("parseSpecial and text parts: $name", ({ spec, eos }) => {
  const native = createTokenizer(spec);
  const hf = new HfTokenizer(tokenizerJsonFromVocab(spec), tokenizerConfigFromVocab(spec));

  test("parseSpecial false keeps control-token text as text; true (the default) makes it the token", () => {
    const eosId = spec.eosId as number;
    for (const tokenizer of [native, hf]) {
      expect(tokenizer.encode(`a${eos}`, { addSpecial: false })).toContain(eosId);
      const ids = tokenizer.encode(`a${eos}`, { addSpecial: false, parseSpecial: false });
      expect(ids).not.toContain(eosId);
      expect(tokenizer.decode(ids, { skipSpecial: false })).toBe(`a${eos}`);
    }
  });

  test("parts that all parse, or all do not, tokenize as their joined text", () => {
    fc.assert(
      fc.property(parts, fc.boolean(), fc.boolean(), (ps, parseSpecial, addSpecial) => {
        const uniform = ps.map((p) => ({ ...p, parseSpecial }));
        const joined = ps.map((p) => p.text).join("");
        expect(native.encode(uniform, { addSpecial })).toEqual(
          native.encode(joined, { addSpecial, parseSpecial }),
        );
      }),
      { numRuns: 300 },
    );
  });

  test("@huggingface/tokenizers agrees on any parts, special-token spellings included", () => {
    fc.assert(
      fc.property(parts, fc.boolean(), (ps, addSpecial) => {
        expect(hf.encode(ps, { addSpecial })).toEqual(native.encode(ps, { addSpecial }));
      }),
      { numRuns: 300 },
    );
  });

  test("findSpecialText names the first control-token text, and only that", () => {
    for (const tokenizer of [native, hf]) {
      expect(tokenizer.findSpecialText(`x ${eos} <unk-ish`)).toBe(eos);
      expect(tokenizer.findSpecialText("plain words, < and >")).toBeUndefined();
    }
  });
});

test("a user-defined token matches whether or not special tokens are parsed (llama.cpp and HF do the same)", () => {
  const userTag = byteLevelFirstSpecial + 3;
  for (const tokenizer of [
    createTokenizer(byteLevelSpec),
    new HfTokenizer(tokenizerJsonFromVocab(byteLevelSpec), tokenizerConfigFromVocab(byteLevelSpec)),
  ]) {
    expect(tokenizer.encode("a<|user_tag|>", { addSpecial: false, parseSpecial: false })).toContain(userTag);
    expect(tokenizer.findSpecialText("a<|user_tag|>")).toBeUndefined();
  }
});

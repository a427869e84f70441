import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { InputError } from "../../src/model/errors.js";
import { loadModel } from "../../src/model/load.js";
import { ByteLevelBpeTokenizer } from "../../src/model/tokenizer/byte-bpe.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import {
  HfTokenizer,
  loadHfTokenizer,
  tokenizerConfigFromVocab,
  tokenizerJsonFromVocab,
  vocabFromTokenizerJson,
} from "../../src/model/tokenizer/hf-tokenizer.js";
import { loadLlama2cTokenizer } from "../../src/model/tokenizer/llama2c-tokenizer.js";
import { TokenType, type VocabSpec } from "../../src/model/tokenizer/tokenizer.js";
import { describeShared, llama2Tokenizer32k, needs, stories260K } from "../shared-models.js";
import { byteLevelFirstSpecial, byteLevelSpecials, tinyByteLevelSpec } from "../tokenizer-fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "vellum-hf-tokenizer-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes a HF tokenizer directory and returns its path. */
function writeHfDir(name: string, files: Record<string, unknown>): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    writeFileSync(join(dir, file), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

const anyText = fc.string({ unit: "binary", maxLength: 40 });
const storyText = fc.string({
  unit: fc.constantFrom(..."the cat sat on a mat. Lily and Tom!\né😀<s>/"),
  maxLength: 60,
});

describe("tokenizer.json from the demo model's vocabulary (SentencePiece)", () => {
  const spec = loadModel(bundledModelPath).vocab as VocabSpec;
  const sentencePiece = createTokenizer(spec);
  const dir = writeHfDir("demo", {
    "tokenizer.json": tokenizerJsonFromVocab(spec),
    "tokenizer_config.json": tokenizerConfigFromVocab(spec, "{{ bos_token }}{{ messages[0]['content'] }}"),
    "generation_config.json": { eos_token_id: [2, 7] },
  });
  const hf = loadHfTokenizer(dir);

  test("@huggingface/tokenizers reads it with the same BOS, EOS, size, pieces, chat template and stop ids", () => {
    expect(hf.vocabSize).toBe(2048);
    expect(hf.bosId).toBe(1);
    expect(hf.eosId).toBe(2);
    expect(hf.stopIds).toEqual([2, 7]);
    expect(hf.chatTemplate).toBe("{{ bos_token }}{{ messages[0]['content'] }}");
    expect(spec.tokens.map((_, id) => hf.idToToken(id))).toEqual(spec.tokens);
  });

  test("agrees with the SentencePiece tokenizer on arbitrary text, special-token text included", () => {
    for (const text of [anyText, storyText]) {
      fc.assert(
        fc.property(text, fc.boolean(), (s, addSpecial) => {
          expect(hf.encode(s, { addSpecial })).toEqual(sentencePiece.encode(s, { addSpecial }));
        }),
        { numRuns: 200 },
      );
    }
  });

  test("decodes arbitrary token sequences like the SentencePiece tokenizer", () => {
    const ids = fc.array(fc.integer({ min: 0, max: 2047 }), { maxLength: 20 });
    fc.assert(
      fc.property(ids, fc.boolean(), (seq, skipSpecial) => {
        expect(hf.decode(seq, { skipSpecial })).toBe(sentencePiece.decode(seq, { skipSpecial }));
      }),
      { numRuns: 300 },
    );
  });

  test("vocabFromTokenizerJson turns it back into an equivalent `llama` vocabulary", () => {
    const back = vocabFromTokenizerJson(tokenizerJsonFromVocab(spec), tokenizerConfigFromVocab(spec));
    expect(back).toMatchObject({ model: "llama", tokens: spec.tokens, tokenTypes: spec.tokenTypes });
    expect(back).toMatchObject({
      bosId: 1,
      eosId: 2,
      unkId: 0,
      addBos: true,
      addEos: false,
      addSpacePrefix: true,
    });
    const again = createTokenizer(back);
    fc.assert(
      fc.property(storyText, (s) => {
        expect(again.encode(s)).toEqual(sentencePiece.encode(s));
      }),
    );
  });
});

describeShared("tokenizer.json from ../shared's vocabularies", needs.tokenizers, () => {
  test("stories260K's tok512: the golden prompts encode to the golden ids", () => {
    const spec = loadLlama2cTokenizer(stories260K.tokenizer, 512);
    const hf = new HfTokenizer(tokenizerJsonFromVocab(spec), tokenizerConfigFromVocab(spec));
    expect(hf.vocabSize).toBe(512);
    expect(hf.idToToken(265)).toBe("\u2581the");
    expect(hf.encode("Once upon a time")).toEqual([1, 403, 407, 261, 378]);
    expect(hf.encode("Lily and Tom went to the park")).toEqual([
      1, 317, 269, 274, 287, 263, 377, 267, 265, 282, 295, 433,
    ]);
  });

  test("the 32k LLaMA-2 vocabulary: agrees with the SentencePiece tokenizer on arbitrary text", () => {
    const spec = loadLlama2cTokenizer(llama2Tokenizer32k, 32000);
    const sentencePiece = createTokenizer(spec);
    const hf = new HfTokenizer(tokenizerJsonFromVocab(spec), tokenizerConfigFromVocab(spec));
    expect(hf.encode("Hello world")).toEqual([1, 15043, 3186]);
    // Pieces named like Object.prototype's members ("valueOf" is id 25835) are in the converted vocabulary too.
    for (const s of ["\u0000valueOf", "\u0000constructor", "\u0000toString"])
      expect(hf.encode(s), s).toEqual(sentencePiece.encode(s));
    fc.assert(
      fc.property(fc.oneof(anyText, storyText), (s) => {
        expect(hf.encode(s)).toEqual(sentencePiece.encode(s));
      }),
      { numRuns: 300 },
    );
  });
});

describe("tokenizer.json for byte-level BPE (hand-built vocabulary)", () => {
  for (const pre of ["gpt-2", "llama-bpe", "qwen2", "gpt-4o", "smollm"]) {
    test(`@huggingface/tokenizers agrees with ByteLevelBpeTokenizer, pre = ${pre}`, () => {
      const spec = tinyByteLevelSpec(pre);
      const ours = new ByteLevelBpeTokenizer(spec);
      const hf = new HfTokenizer(tokenizerJsonFromVocab(spec), tokenizerConfigFromVocab(spec));
      const text = fc.oneof(
        anyText,
        fc.string({
          unit: fc.constantFrom(..."hello the 1234 it'S\n\t", ...byteLevelSpecials),
          maxLength: 20,
        }),
      );
      fc.assert(
        fc.property(text, (s) => {
          const ids = ours.encode(s);
          expect(hf.encode(s)).toEqual(ids);
          expect(hf.decode(ids)).toBe(ours.decode(ids));
          expect(hf.decode(ids, { skipSpecial: false })).toBe(ours.decode(ids, { skipSpecial: false }));
        }),
        { numRuns: 200 },
      );
    });

    test(`vocabFromTokenizerJson gives back the byte-level vocabulary, pre = ${pre}`, () => {
      const spec = tinyByteLevelSpec(pre);
      const back = vocabFromTokenizerJson(tokenizerJsonFromVocab(spec), tokenizerConfigFromVocab(spec));
      expect(back).toMatchObject({
        model: "gpt2",
        tokens: spec.tokens,
        // llama.cpp's converter makes an added token spelled <|…|> a control token even when not special.
        tokenTypes: spec.tokenTypes?.map((t, id) =>
          id === byteLevelFirstSpecial + 3 ? TokenType.control : t,
        ),
        merges: spec.merges,
        pre,
        bosId: spec.bosId,
        eosId: spec.eosId,
        addBos: true,
        addEos: false,
      });
    });
  }
});

describe("HF tokenizer errors", () => {
  test("a directory without tokenizer.json is an InputError naming the file", () => {
    expect(() => loadHfTokenizer(join(tmp, "nowhere"))).toThrow(/nowhere\/tokenizer\.json: file not found$/);
  });

  test("invalid JSON is an InputError naming the file", () => {
    const dir = writeHfDir("broken", { "tokenizer.json": "{ not json" });
    expect(() => loadHfTokenizer(dir)).toThrow(InputError);
    expect(() => loadHfTokenizer(dir)).toThrow(/broken\/tokenizer\.json: not valid JSON/);
  });

  test("a tokenizer.json that @huggingface/tokenizers rejects is an InputError", () => {
    expect(() => new HfTokenizer({ model: { type: "BPE" } }, {}, "t/tokenizer.json")).toThrow(
      /^t\/tokenizer\.json: cannot build tokenizer: /,
    );
  });

  test("models vellum cannot convert are InputErrors", () => {
    expect(() => vocabFromTokenizerJson({ model: { type: "WordPiece", vocab: {} } }, {}, "w.json")).toThrow(
      /^w\.json: unsupported tokenizer model "WordPiece"/,
    );
    const unknownRegex = {
      model: { type: "BPE", vocab: { a: 0 }, merges: [] },
      pre_tokenizer: {
        type: "Sequence",
        pretokenizers: [{ type: "Split", pattern: { Regex: "\\w+" } }, { type: "ByteLevel" }],
      },
    };
    expect(() => vocabFromTokenizerJson(unknownRegex, {}, "x.json")).toThrow(
      /^x\.json: pre-tokenizer is not one vellum knows/,
    );
  });
});

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { ByteLevelBpeTokenizer } from "../../src/model/tokenizer/byte-bpe.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import {
  HfTokenizer,
  tokenizerConfigFromVocab,
  tokenizerJsonFromVocab,
} from "../../src/model/tokenizer/hf-tokenizer.js";
import { IncrementalDetokenizer } from "../../src/model/tokenizer/incremental-detokenizer.js";
import type { Tokenizer, VocabSpec } from "../../src/model/tokenizer/tokenizer.js";
import { tinyByteLevelSpec } from "../tokenizer-fixtures.js";

/** Every push's output, then flush's. */
function stream(tok: Tokenizer, ids: readonly number[], promptIds: readonly number[] = []): string[] {
  const detok = new IncrementalDetokenizer(tok, promptIds);
  return [...ids.map((id) => detok.push(id)), detok.flush()];
}

/** Properties every tokenizer must satisfy; `ids` may be any token sequence (bytes, control tokens, …). */
function checkStreaming(tok: Tokenizer, ids: fc.Arbitrary<number[]>, text: fc.Arbitrary<string>) {
  test("the pushes plus flush add up to decode(all ids), for any id sequence", () => {
    fc.assert(
      fc.property(ids, (seq) => {
        expect(stream(tok, seq).join("")).toBe(tok.decode(seq));
      }),
      { numRuns: 500 },
    );
  });

  test("no push emits a broken character when the text has none", () => {
    fc.assert(
      fc.property(text, (s) => {
        const chunks = stream(tok, tok.encode(s));
        expect(chunks.join("")).toBe(tok.decode(tok.encode(s)));
        for (const chunk of chunks) expect(chunk).not.toContain("\uFFFD");
      }),
      { numRuns: 300 },
    );
  });

  test("after a prompt, the output is what the generated ids add to the prompt's text", () => {
    fc.assert(
      fc.property(text, text, (prompt, continuation) => {
        const promptIds = tok.encode(prompt);
        const generated = tok.encode(continuation, { addSpecial: false });
        const whole = tok.decode([...promptIds, ...generated]);
        const before = tok.decode(promptIds);
        expect(whole.startsWith(before)).toBe(true);
        expect(stream(tok, generated, promptIds).join("")).toBe(whole.slice(before.length));
      }),
      { numRuns: 300 },
    );
  });
}

const unicodeText = fc.string({ unit: "binary", maxLength: 30 }).filter((s) => !s.includes("\uFFFD"));

describe("IncrementalDetokenizer on byte-level BPE", () => {
  const tok = new ByteLevelBpeTokenizer(tinyByteLevelSpec("llama-bpe"));
  checkStreaming(
    tok,
    fc.array(fc.integer({ min: 0, max: tok.vocabSize - 1 }), { maxLength: 25 }),
    unicodeText,
  );

  test("a character split over byte tokens comes out once, when its last byte arrives", () => {
    // 😀 is F0 9F 98 80: four byte tokens, ids = byte values in this vocabulary.
    const detok = new IncrementalDetokenizer(tok);
    expect([0xf0, 0x9f, 0x98, 0x80].map((b) => detok.push(b))).toEqual(["", "", "", "😀"]);
    expect(detok.push("!".charCodeAt(0))).toBe("!");
    expect(detok.flush()).toBe("");
  });

  test("flush returns an incomplete character as U+FFFD", () => {
    const detok = new IncrementalDetokenizer(tok);
    expect(detok.push(0xe2)).toBe("");
    expect(detok.flush()).toBe("\uFFFD");
  });
});

const noSpecialText = unicodeText.filter((s) => !/<unk>|<s>|<\/s>|\u2581/.test(s));

const demoSpec = loadModel(bundledModelPath).vocab as VocabSpec;
const demoIds = fc.array(fc.integer({ min: 0, max: demoSpec.tokens.length - 1 }), { maxLength: 25 });

describe("IncrementalDetokenizer on the demo model's SentencePiece vocabulary through @huggingface/tokenizers", () => {
  const tok = new HfTokenizer(tokenizerJsonFromVocab(demoSpec), tokenizerConfigFromVocab(demoSpec));
  checkStreaming(tok, demoIds, noSpecialText);
});

describe("IncrementalDetokenizer on the demo model's SentencePiece tokenizer", () => {
  const tok = createTokenizer(demoSpec);
  checkStreaming(tok, demoIds, noSpecialText);

  test("keeps the leading space of a continuation and drops the one after BOS", () => {
    const prompt = tok.encode("And God said, Let there be");
    const [light] = tok.encode("light", { addSpecial: false }); // "▁light"
    expect(stream(tok, [light], prompt)).toEqual([" light", ""]);
    expect(stream(tok, [1, light])).toEqual(["", "light", ""]);
  });
});

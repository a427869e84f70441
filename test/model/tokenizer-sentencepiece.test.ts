import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { InputError } from "../../src/model/errors.js";
import { loadModel } from "../../src/model/load.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import { loadLlama2cTokenizer } from "../../src/model/tokenizer/llama2c-tokenizer.js";
import { SentencePieceTokenizer, sentencePieceVocab } from "../../src/model/tokenizer/sentencepiece.js";
import { TokenType, type VocabSpec } from "../../src/model/tokenizer/tokenizer.js";
import { describeShared, llama2Tokenizer32k, needs, stories260K } from "../shared-models.js";

const SPACE_MARK = "\u2581";

/** <unk>, <s>, </s>, 256 byte pieces (ids 3..258, as in llama2.c vocabularies), then `pieces` with scores. */
function tinySpec(pieces: [string, number][], opts: Partial<VocabSpec> = {}): VocabSpec {
  return { ...sentencePieceVocab(pieces), ...opts };
}

/** Text tokens of an encoding, by piece, for readable expectations. */
function pieces(tok: SentencePieceTokenizer, text: string): string[] {
  return tok.encode(text, { addSpecial: false }).map((id) => tok.idToToken(id));
}

/**
 * SentencePiece-BPE straight from its definition, O(n²): rescan all adjacent pairs, merge the one whose
 * concatenation is a piece with the highest score (strictly higher wins, so ties go leftmost); pieces left
 * that are not in the vocabulary become byte tokens (id = byte + 3).
 */
function referenceEncode(spec: VocabSpec, text: string): number[] {
  const ids = new Map(spec.tokens.map((t, id) => [t, id]));
  const normal = (p: string) => {
    const id = ids.get(p);
    return id !== undefined && spec.tokenTypes?.[id] === TokenType.normal ? id : undefined;
  };
  const symbols = Array.from(text === "" ? "" : ` ${text}`.replaceAll(" ", SPACE_MARK));
  for (;;) {
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const id = normal(symbols[i] + symbols[i + 1]);
      if (id !== undefined && (spec.scores as number[])[id] > bestScore) {
        best = i;
        bestScore = (spec.scores as number[])[id];
      }
    }
    if (best < 0) break;
    symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
  }
  return [1, ...symbols.flatMap((p) => normal(p) ?? [...Buffer.from(p, "utf8")].map((b) => b + 3))];
}

/** Arbitrary Unicode text (astral emoji included) that cannot round-trip only for the documented reasons. */
const roundTripText = fc
  .string({ unit: "binary", maxLength: 40 })
  .filter((s) => !s.includes(SPACE_MARK) && !/<unk>|<s>|<\/s>/.test(s));

describe("SentencePieceTokenizer on hand-built vocabularies", () => {
  test("merges the highest-scoring pair first", () => {
    const tok = new SentencePieceTokenizer(
      tinySpec([
        [SPACE_MARK, -10],
        ["a", -10],
        ["b", -10],
        ["c", -10],
        ["ab", -2],
        ["bc", -1],
      ]),
    );
    // "▁abc": ▁a is no piece; bc (-1) beats ab (-2).
    expect(pieces(tok, "abc")).toEqual([SPACE_MARK, "a", "bc"]);
  });

  test("ties go to the leftmost pair", () => {
    const tok = new SentencePieceTokenizer(
      tinySpec([
        [SPACE_MARK, -10],
        ["a", -10],
        ["b", -10],
        ["c", -10],
        ["ab", -1],
        ["bc", -1],
      ]),
    );
    expect(pieces(tok, "abc")).toEqual([SPACE_MARK, "ab", "c"]);
  });

  test("characters missing from the vocabulary fall back to UTF-8 byte tokens", () => {
    const tok = new SentencePieceTokenizer(tinySpec([[SPACE_MARK, -1]]));
    // "é" is C3 A9; the dummy prefix stays a piece.
    expect(tok.encode("é")).toEqual([1, 259, 0xc3 + 3, 0xa9 + 3]);
    expect(tok.decode(tok.encode("é"))).toBe("é");
  });

  test("without byte pieces an unknown character becomes <unk>", () => {
    const spec: VocabSpec = {
      model: "llama",
      tokens: ["<unk>", "<s>", "</s>", SPACE_MARK, "a"],
      scores: [0, 0, 0, -1, -2],
      unkId: 0,
      bosId: 1,
      eosId: 2,
      addBos: true,
      addEos: false,
    };
    const tok = new SentencePieceTokenizer(spec);
    expect(tok.encode("aé")).toEqual([1, 3, 4, 0]);
    expect(tok.decode([1, 3, 4, 0])).toBe("a");
    expect(tok.decode([1, 3, 4, 0], { skipSpecial: false })).toBe("<s> a<unk>");
  });

  test("special-token text maps to its id, and the text after it gets the dummy prefix again", () => {
    const tok = new SentencePieceTokenizer(
      tinySpec([
        [SPACE_MARK, -3],
        ["a", -3],
        [`${SPACE_MARK}a`, -1],
      ]),
    );
    const spaceA = 259 + 2;
    expect(tok.encode("a</s>a")).toEqual([1, spaceA, 2, spaceA]);
    expect(tok.encode("a</s>a", { addSpecial: false })).toEqual([spaceA, 2, spaceA]);
    expect(tok.decode([1, spaceA, 2, spaceA])).toBe("a a");
    expect(tok.decode([1, spaceA, 2, spaceA], { skipSpecial: false })).toBe("<s> a</s> a");
  });

  test("decode drops only the one space the dummy prefix added", () => {
    const tok = new SentencePieceTokenizer(tinySpec([[SPACE_MARK, -1]]));
    expect(tok.decode(tok.encode("  x "))).toBe("  x ");
    expect(tok.encode("")).toEqual([1]);
    expect(tok.decode([])).toBe("");
  });

  test("addEos appends EOS; stopIds holds EOS and the eot ids", () => {
    const tok = new SentencePieceTokenizer(tinySpec([[SPACE_MARK, -1]], { addEos: true, eotIds: [5, 2] }));
    expect(tok.encode("A")).toEqual([1, 259, 0x41 + 3, 2]);
    expect(tok.stopIds).toEqual([2, 5]);
  });

  test("bad vocabularies and token ids are InputErrors", () => {
    expect(() => new SentencePieceTokenizer({ ...tinySpec([]), scores: [0] }, "m.gguf")).toThrow(
      /^m\.gguf: a SentencePiece vocabulary needs one score per token/,
    );
    expect(() => createTokenizer({ ...tinySpec([]), model: "wordpiece" as "llama" }, "m.gguf")).toThrow(
      /^m\.gguf: unsupported tokenizer model "wordpiece"/,
    );
    const tok = new SentencePieceTokenizer(tinySpec([]));
    expect(() => tok.decode([9999])).toThrow(InputError);
    expect(() => tok.idToToken(-1)).toThrow(/token id -1 is outside the vocabulary/);
  });
});

describe("SentencePieceTokenizer on the demo model's vocabulary", () => {
  const spec = loadModel(bundledModelPath).vocab as VocabSpec;
  const tok = createTokenizer(spec, bundledModelPath);

  test("agrees with the O(n²) definition of SentencePiece-BPE", () => {
    const words = fc.string({
      unit: fc.constantFrom(..."the LORD said unto Moses. And God!\né😀"),
      maxLength: 60,
    });
    fc.assert(
      fc.property(words, (text) => {
        expect(tok.encode(text)).toEqual(referenceEncode(spec, text));
      }),
    );
  });

  test("decode(encode(x)) == x for arbitrary Unicode text", () => {
    fc.assert(
      fc.property(roundTripText, (text) => {
        expect(tok.decode(tok.encode(text))).toBe(text);
      }),
      {
        numRuns: 300,
      },
    );
  });

  test("a 10 kB prompt encodes in milliseconds (the merge loop is not quadratic)", () => {
    const prompt = "In the beginning God created the heaven and the earth. 😀 ".repeat(180).slice(0, 10_000);
    tok.encode(prompt);
    const start = performance.now();
    const ids = tok.encode(prompt);
    const ms = performance.now() - start;
    expect(tok.decode(ids)).toBe(prompt);
    // A rescanning O(n²) loop needs seconds here; the heap needs a few tens of ms on a busy 2-core machine.
    expect(ms).toBeLessThan(300);
  });
});

describeShared("SentencePieceTokenizer on ../shared's vocabularies", needs.tokenizers, () => {
  describe("stories260K's tok512", () => {
    const tok = createTokenizer(loadLlama2cTokenizer(stories260K.tokenizer, 512), stories260K.tokenizer);
    const golden = JSON.parse(readFileSync(stories260K.golden, "utf8")) as {
      cases: {
        prompt_text: string;
        prompt_tokens: number[];
        generated_tokens?: number[];
        generated_text?: string;
      }[];
    };

    test("encodes the golden prompts to the golden prompt tokens (BOS + dummy prefix)", () => {
      expect(golden.cases.length).toBeGreaterThanOrEqual(3);
      for (const c of golden.cases) expect(tok.encode(c.prompt_text)).toEqual(c.prompt_tokens);
    });

    test("decodes the golden generation to the golden text", () => {
      const c = golden.cases.find((x) => x.generated_tokens !== undefined);
      expect(c?.generated_text).toBeDefined();
      expect(tok.decode([...(c?.prompt_tokens ?? []), ...(c?.generated_tokens ?? [])])).toBe(
        c?.generated_text,
      );
    });
  });

  describe("the 32k LLaMA-2 vocabulary", () => {
    const tok = createTokenizer(loadLlama2cTokenizer(llama2Tokenizer32k, 32000), llama2Tokenizer32k);

    test("known LLaMA-2 encodings", () => {
      expect(tok.encode("Hello world")).toEqual([1, 15043, 3186]);
      expect(tok.encode("Hello, world!")).toEqual([1, 15043, 29892, 3186, 29991]);
      // The dummy prefix has no piece "▁\n", so a lone newline is ▁ (29871) + byte <0x0A> (13).
      expect(tok.encode("\n")).toEqual([1, 29871, 13]);
      expect(tok.decode([1, 15043, 3186])).toBe("Hello world");
    });

    test("decode(encode(x)) == x for arbitrary Unicode text", () => {
      fc.assert(
        fc.property(roundTripText, (text) => {
          expect(tok.decode(tok.encode(text))).toBe(text);
        }),
        {
          numRuns: 300,
        },
      );
    });
  });
});

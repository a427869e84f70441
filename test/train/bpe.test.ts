import fc from "fast-check";
import { expect, test } from "vitest";
import { SentencePieceTokenizer } from "../../src/model/tokenizer/sentencepiece.js";
import { TokenType } from "../../src/model/tokenizer/tokenizer.js";
import { countWords, trainBpeVocab } from "../../src/train/bpe-trainer.js";

const text = [
  "In the beginning God created the heaven and the earth.",
  "And the earth was without form, and void; and darkness was upon the face of the deep.",
  "And God said, Let there be light: and there was light.",
  "And God saw the light, that it was good: and God divided the light from the darkness.",
].map((v) => ` ${v}`);

test("words: an optional leading space (▁) with a run of letters, of digits, or one other character", () => {
  expect([...countWords([" And God said, 12 times: go!\nYea"]).entries()]).toEqual([
    ["▁And", 1],
    ["▁God", 1],
    ["▁said", 1],
    [",", 1],
    ["▁12", 1],
    ["▁times", 1],
    [":", 1],
    ["▁go", 1],
    ["!", 1],
    ["Yea", 1],
  ]);
});

test("merges the most frequent pair first, ties to the pair seen first", () => {
  // Pairs: (▁,a) ×3 and (a,b) ×3 tie; (▁,a) is seen first. Then (▁a,b) ×3 beats (b,c) ×1.
  const spec = trainBpeVocab([" ab ab abc"], 3 + 256 + 4 + 2);
  const merged = spec.tokens.slice(259, 261);
  expect(merged).toEqual(["▁a", "▁ab"]);
  expect(spec.scores?.slice(259, 261)).toEqual([-1, -2]);
  // The characters come after the merges, most frequent first (ties by code point, ▁ is U+2581), scored below
  // every merge.
  expect(spec.tokens.slice(261)).toEqual(["a", "b", "▁", "c"]);
  expect(Math.max(...(spec.scores ?? []).slice(261))).toBeLessThan(-2);
});

test("a trained vocabulary has the requested size, unique pieces, and the SentencePiece layout", () => {
  const spec = trainBpeVocab(text, 360);
  expect(spec.tokens).toHaveLength(360);
  expect(new Set(spec.tokens).size).toBe(360);
  expect(spec.tokens.slice(0, 3)).toEqual(["<unk>", "<s>", "</s>"]);
  expect(spec.tokens[3 + 0x41]).toBe("<0x41>");
  expect(spec.tokenTypes?.slice(3, 259).every((t) => t === TokenType.byte)).toBe(true);
  // Pieces never hold a space mark except at their start: they never cross a word boundary.
  for (const piece of spec.tokens.slice(259)) expect(piece.slice(1).includes("▁"), piece).toBe(false);
});

test("a text that runs out of pairs gives a smaller vocabulary (every word is one piece)", () => {
  const spec = trainBpeVocab(text, 1000);
  expect(spec.tokens.length).toBeLessThan(1000);
  const tokenizer = new SentencePieceTokenizer(spec);
  for (const word of countWords(text).keys()) {
    // A word after a space: the dummy prefix supplies its ▁.
    if (word.startsWith("▁"))
      expect(tokenizer.encode(word.slice(1), { addSpecial: false }), word).toHaveLength(1);
  }
});

test("the trained tokenizer encodes its training text with learned pieces and round-trips any UTF-8", () => {
  const tokenizer = new SentencePieceTokenizer(trainBpeVocab(text, 1000));
  const ids = tokenizer.encode("And God said, Let there be light", { addSpecial: false });
  expect(ids.map((id) => tokenizer.idToToken(id))).toEqual([
    "▁And",
    "▁God",
    "▁said",
    ",",
    "▁Let",
    "▁there",
    "▁be",
    "▁light",
  ]);
  // Any text but the control tokens' own spellings, which encode as those tokens (decode drops them), and ▁
  // (U+2581), SentencePiece's space mark, which decodes as a space by design.
  const anyText = fc.string({ unit: "grapheme" }).filter((s) => !/<s>|<\/s>|<unk>|▁/.test(s));
  fc.assert(
    fc.property(anyText, (s) => {
      expect(tokenizer.decode(tokenizer.encode(s))).toBe(s);
    }),
  );
});

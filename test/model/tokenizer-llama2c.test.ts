import { describe, expect, test } from "vitest";
import { InputError } from "../../src/model/errors.js";
import { loadLlama2cTokenizer, parseLlama2cTokenizer } from "../../src/model/tokenizer/llama2c-tokenizer.js";
import { TokenType } from "../../src/model/tokenizer/tokenizer.js";
import { describeShared, llama2Tokenizer32k, needs, stories260K } from "../shared-models.js";

/** A llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 len, bytes. */
function tokenizerBin(records: [number, string][]): Uint8Array {
  const pieces = records.map(([score, text]) => [score, Buffer.from(text, "utf8")] as const);
  const size = 4 + pieces.reduce((n, [, b]) => n + 8 + b.length, 0);
  const buf = Buffer.alloc(size);
  buf.writeInt32LE(Math.max(...pieces.map(([, b]) => b.length)), 0);
  let offset = 4;
  for (const [score, bytes] of pieces) {
    buf.writeFloatLE(score, offset);
    buf.writeInt32LE(bytes.length, offset + 4);
    bytes.copy(buf, offset + 8);
    offset += 8 + bytes.length;
  }
  return buf;
}

const tiny: [number, string][] = [
  [0, "<unk>"],
  [0, "\n<s>\n"],
  [0, "\n</s>\n"],
  [0, "<0x41>"],
  [-1, " the"],
  [-2, "é"],
];

describe("parseLlama2cTokenizer", () => {
  test("converts llama2.c's spelling to SentencePiece's (▁, <s>, </s>) and assigns token types", () => {
    const spec = parseLlama2cTokenizer(tokenizerBin(tiny), tiny.length, "tiny.bin");
    expect(spec.tokens).toEqual(["<unk>", "<s>", "</s>", "<0x41>", "\u2581the", "é"]);
    expect(spec.scores).toEqual([0, 0, 0, 0, -1, -2]);
    expect(spec.tokenTypes).toEqual([
      TokenType.unknown,
      TokenType.control,
      TokenType.control,
      TokenType.byte,
      TokenType.normal,
      TokenType.normal,
    ]);
    expect(spec).toMatchObject({ model: "llama", unkId: 0, bosId: 1, eosId: 2, addBos: true, addEos: false });
    expect(spec.addSpacePrefix).toBe(true);
  });

  test("a tokenizer with fewer tokens than the model's vocabulary is an InputError naming the file", () => {
    expect(() => parseLlama2cTokenizer(tokenizerBin(tiny), 7, "tiny.bin")).toThrow(InputError);
    expect(() => parseLlama2cTokenizer(tokenizerBin(tiny), 7, "tiny.bin")).toThrow(
      /^tiny\.bin: tokenizer ends at byte \d+ after 6 tokens, but the model's vocabulary has 7$/,
    );
  });

  test("a tokenizer with more tokens than the model's vocabulary is an InputError", () => {
    expect(() => parseLlama2cTokenizer(tokenizerBin(tiny), 5, "tiny.bin")).toThrow(
      /^tiny\.bin: \d+ bytes left after 5 tokens: the tokenizer does not match the model's vocabulary size$/,
    );
  });

  test("truncated and corrupt files are InputErrors with the byte offset", () => {
    const bin = tokenizerBin(tiny);
    expect(() => parseLlama2cTokenizer(bin.subarray(0, 2), 6, "t.bin")).toThrow(
      /^t\.bin: truncated tokenizer/,
    );
    // Cut inside the last piece's bytes: its length points past the end.
    expect(() => parseLlama2cTokenizer(bin.subarray(0, bin.length - 1), 6, "t.bin")).toThrow(
      /^t\.bin: token 5 at byte \d+ has length 2 past the end of the file$/,
    );
    const negative = Buffer.from(bin);
    negative.writeInt32LE(-5, 4 + 4); // length field of token 0
    expect(() => parseLlama2cTokenizer(negative, 6, "t.bin")).toThrow(
      /^t\.bin: token 0 at byte 8 has length -5/,
    );
    const badUtf8 = Buffer.from(bin);
    badUtf8[badUtf8.length - 1] = 0xff; // second byte of "é"
    expect(() => parseLlama2cTokenizer(badUtf8, 6, "t.bin")).toThrow(
      /^t\.bin: token 5 at byte \d+ is not valid UTF-8$/,
    );
  });

  test("a vocabulary too small for <unk>, <s>, </s> is rejected", () => {
    expect(() => parseLlama2cTokenizer(tokenizerBin(tiny.slice(0, 2)), 2, "t.bin")).toThrow(InputError);
  });

  test("a missing file is an InputError naming it", () => {
    expect(() => loadLlama2cTokenizer("/nonexistent/tok.bin", 512)).toThrow(
      /^\/nonexistent\/tok\.bin: cannot read/,
    );
  });
});

describeShared("llama2.c tokenizers from ../shared/models", needs.tokenizers, () => {
  test("tok512.bin: 512 tokens, byte tokens 3..258, merges spelled with ▁", () => {
    const spec = loadLlama2cTokenizer(stories260K.tokenizer, 512);
    expect(spec.tokens).toHaveLength(512);
    expect(spec.tokens[3]).toBe("<0x00>");
    expect(spec.tokens[258]).toBe("<0xFF>");
    expect(spec.tokenTypes?.slice(3, 259).every((t) => t === TokenType.byte)).toBe(true);
    expect(spec.tokens[259]).toBe("\u2581t");
    expect(spec.tokens[265]).toBe("\u2581the");
    expect(spec.scores?.slice(260, 263)).toEqual([-1, -2, -3]);
  });

  test("tok512.bin does not match a model with another vocabulary size", () => {
    expect(() => loadLlama2cTokenizer(stories260K.tokenizer, 32000)).toThrow(/tok512\.bin: tokenizer ends/);
    expect(() => loadLlama2cTokenizer(stories260K.tokenizer, 500)).toThrow(/tok512\.bin: \d+ bytes left/);
  });

  test("the 32k LLaMA-2 tokenizer parses to EOF with its known pieces", () => {
    const spec = loadLlama2cTokenizer(llama2Tokenizer32k, 32000);
    expect(spec.tokens[278]).toBe("\u2581the");
    expect(spec.tokens[15043]).toBe("\u2581Hello");
    expect(spec.tokens[13]).toBe("<0x0A>");
  });
});

import { InputError, quoteFileString, showFileValue } from "../errors.js";
import { mergeSymbols } from "./bpe-merge.js";
import { byteToChar, charToByte } from "./byte-unicode.js";
import { type PreTokenizer, preTokenize, preTokenizerOf, supportedPreNames } from "./pretokenize-patterns.js";
import type { TextSegment } from "./special-tokens.js";
import { utf8Encoder } from "./token-bytes.js";
import { TokenType, type VocabSpec } from "./tokenizer.js";
import { type VocabEntry, VocabTokenizer } from "./vocab-tokenizer.js";

/**
 * Byte-level BPE (GGUF `gpt2` model: GPT-2, Llama 3, Qwen2), as llama.cpp's llm_tokenizer_bpe does it:
 *
 * encode: special tokens (types control and user-defined) are matched first (control ones only where special
 * tokens are parsed, as llama.cpp's parse_special); the rest is split into words
 * by the pre-tokenizer regex of `spec.pre`; each word's UTF-8 bytes become GPT-2 byte characters and merge
 * greedily, the pair with the lowest rank in `spec.merges` first (ties: leftmost). With Llama 3's pattern a
 * word that is already a token is taken whole (HF `ignore_merges`).
 *
 * decode: normal tokens map their characters back to bytes, joined into UTF-8; user-defined tokens are
 * their text; control tokens are dropped unless `skipSpecial` is false.
 */
export class ByteLevelBpeTokenizer extends VocabTokenizer {
  /** Normal tokens by text. */
  private readonly tokenIds = new Map<string, number>();
  /** Merge rank by "left right" (the merges line itself). */
  private readonly mergeRanks = new Map<string, number>();
  private readonly pre: PreTokenizer;

  /** `source` names the file the vocabulary came from, for error messages. */
  constructor(spec: VocabSpec, source = "tokenizer") {
    const types = spec.tokenTypes ?? spec.tokens.map(() => TokenType.normal);
    super(spec, source, types, byteLevelEntry);
    this.pre = byteLevelPreTokenizer(spec, source);
    spec.tokens.forEach((token, id) => {
      const type = types[id];
      if (type === TokenType.control || type === TokenType.userDefined || type === TokenType.unused) return;
      if (!this.tokenIds.has(token)) this.tokenIds.set(token, id);
    });

    const missing = byteToChar.findIndex((c) => !this.tokenIds.has(c));
    if (missing >= 0) {
      throw new InputError(`${source}: byte-level vocabulary lacks the token for byte 0x${hex(missing)}`);
    }
    (spec.merges ?? []).forEach((line, rank) => {
      if (line.split(" ").length !== 2) {
        throw new InputError(
          `${source}: merge ${rank} ${quoteFileString(line)} is not two tokens separated by one space`,
        );
      }
      if (!this.mergeRanks.has(line)) this.mergeRanks.set(line, rank);
    });
  }

  protected encodeSegments(segments: readonly TextSegment[], out: number[]): void {
    for (const segment of segments) {
      if ("id" in segment) out.push(segment.id);
      else for (const word of preTokenize(segment.text, this.pre)) this.encodeWord(word, out);
    }
  }

  /** BPE inside one pre-tokenized word; appends the ids to `out`. */
  private encodeWord(word: string, out: number[]): void {
    const symbols = Array.from(utf8Encoder.encode(word), (b) => byteToChar[b]);
    const whole = this.pre.ignoreMerges ? this.tokenIds.get(symbols.join("")) : undefined;
    if (whole !== undefined) {
      out.push(whole);
      return;
    }
    const pieces = mergeSymbols(symbols, (left, right) => this.mergeRanks.get(`${left} ${right}`));
    for (const piece of pieces) {
      const id = this.tokenIds.get(piece);
      if (id !== undefined) out.push(id);
      // A merge whose result is not in the vocabulary (a broken merges list): fall back to its bytes.
      else for (const c of piece) out.push(this.tokenIds.get(c) as number);
    }
  }
}

/** The pre-tokenizer `spec.pre` names; one vellum does not implement is refused, never approximated. */
export function byteLevelPreTokenizer(spec: VocabSpec, source: string): PreTokenizer {
  const pre = preTokenizerOf(spec.pre);
  if (pre === undefined) {
    throw new InputError(
      `${source}: tokenizer.ggml.pre ${showFileValue(spec.pre)} is not a supported pre-tokenizer (supported: ${supportedPreNames.join(", ")})`,
    );
  }
  return pre;
}

/** Special tokens (control and user-defined) decode to their text, normal ones through GPT-2's byte map. */
function byteLevelEntry(token: string, type: number): VocabEntry {
  if (type === TokenType.control || type === TokenType.userDefined) {
    return { bytes: utf8Encoder.encode(token), special: { control: type === TokenType.control } };
  }
  if (type === TokenType.unused) return { bytes: new Uint8Array(0) };
  return { bytes: tokenToBytes(token) };
}

/** Bytes of a normal byte-level token; a character outside GPT-2's byte map stands for its own UTF-8. */
function tokenToBytes(token: string): Uint8Array {
  const bytes: number[] = [];
  for (const c of token) {
    const b = charToByte.get(c);
    if (b !== undefined) bytes.push(b);
    else bytes.push(...utf8Encoder.encode(c));
  }
  return Uint8Array.from(bytes);
}

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, "0");
}

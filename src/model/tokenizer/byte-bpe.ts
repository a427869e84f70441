import { InputError, quoteFileString } from "../errors.js";
import { mergeSymbols } from "./bpe-merge.js";
import { byteToChar, charToByte } from "./byte-unicode.js";
import { type PreTokenizerPattern, preTokenizerPattern } from "./pretokenize-patterns.js";
import { type SpecialToken, SpecialTokenSplitter } from "./special-tokens.js";
import { checkTokenId, decodeByteChunks, stopIdsOf, utf8Encoder } from "./token-bytes.js";
import {
  type EncodeOptions,
  type TextPart,
  type Tokenizer,
  type TokenizerRecipe,
  TokenType,
  textParts,
  type VocabSpec,
} from "./tokenizer.js";

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
export class ByteLevelBpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly stopIds: readonly number[];
  readonly recipe: TokenizerRecipe;
  private readonly tokens: readonly string[];
  private readonly types: readonly number[];
  /** Normal tokens by text. */
  private readonly tokenIds = new Map<string, number>();
  /** Merge rank by "left right" (the merges line itself). */
  private readonly mergeRanks = new Map<string, number>();
  private readonly pattern: PreTokenizerPattern;
  private readonly tokenBytes: Uint8Array[];
  private readonly specials: SpecialTokenSplitter;
  private readonly addBos: boolean;
  private readonly addEos: boolean;

  /** `source` names the file the vocabulary came from, for error messages. */
  constructor(spec: VocabSpec, source = "tokenizer") {
    const n = spec.tokens.length;
    if (n === 0) throw new InputError(`${source}: the tokenizer vocabulary is empty`);
    if (spec.tokenTypes && spec.tokenTypes.length !== n) {
      throw new InputError(`${source}: ${spec.tokenTypes.length} token types for ${n} tokens`);
    }
    this.vocabSize = n;
    this.recipe = { kind: "vocab", spec, source };
    this.tokens = spec.tokens;
    this.types = spec.tokenTypes ?? spec.tokens.map(() => TokenType.normal);
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    this.stopIds = stopIdsOf(spec.eosId, spec.eotIds);
    this.addBos = spec.addBos && spec.bosId !== undefined;
    this.addEos = spec.addEos && spec.eosId !== undefined;
    this.pattern = preTokenizerPattern(spec.pre);

    const specials: SpecialToken[] = [];
    this.tokenBytes = this.tokens.map((token, id) => {
      const type = this.types[id];
      if (type === TokenType.control || type === TokenType.userDefined) {
        specials.push({ text: token, id, control: type === TokenType.control });
        return utf8Encoder.encode(token);
      }
      if (type === TokenType.unused) return new Uint8Array(0);
      if (!this.tokenIds.has(token)) this.tokenIds.set(token, id);
      return tokenToBytes(token);
    });
    this.specials = new SpecialTokenSplitter(specials);

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

  encode(text: string | readonly TextPart[], opts?: EncodeOptions): number[] {
    const addSpecial = opts?.addSpecial ?? true;
    const ids: number[] = [];
    if (addSpecial && this.addBos) ids.push(this.bosId as number);
    for (const segment of this.specials.splitParts(textParts(text, opts?.parseSpecial))) {
      if ("id" in segment) ids.push(segment.id);
      else for (const word of segment.text.match(this.pattern.js) ?? []) this.encodeWord(word, ids);
    }
    if (addSpecial && this.addEos) ids.push(this.eosId as number);
    return ids;
  }

  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string {
    const skipSpecial = opts?.skipSpecial ?? true;
    const chunks: Uint8Array[] = [];
    for (const id of ids) {
      checkTokenId(id, this.vocabSize);
      if (skipSpecial && this.types[id] === TokenType.control) continue;
      chunks.push(this.tokenBytes[id]);
    }
    return decodeByteChunks(chunks);
  }

  idToToken(id: number): string {
    checkTokenId(id, this.vocabSize);
    return this.tokens[id];
  }

  findSpecialText(text: string): string | undefined {
    return this.specials.findControl(text);
  }

  /** BPE inside one pre-tokenized word; appends the ids to `out`. */
  private encodeWord(word: string, out: number[]): void {
    const symbols = Array.from(utf8Encoder.encode(word), (b) => byteToChar[b]);
    const whole = this.pattern.ignoreMerges ? this.tokenIds.get(symbols.join("")) : undefined;
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

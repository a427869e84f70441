import { InputError } from "../errors.js";
import { mergeSymbols } from "./bpe-merge.js";
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

/** SentencePiece's visible space: pieces spell " " as U+2581. */
export const SPACE_MARK = "\u2581";
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** GGUF token types of a `llama` vocab; when the spec has none: byte pieces by spelling, unk/BOS/EOS by id. */
export function sentencePieceTokenTypes(spec: VocabSpec): number[] {
  if (spec.tokenTypes) return spec.tokenTypes;
  return spec.tokens.map((piece, id) => {
    if (id === spec.unkId) return TokenType.unknown;
    if (id === spec.bosId || id === spec.eosId) return TokenType.control;
    return BYTE_PIECE.test(piece) ? TokenType.byte : TokenType.normal;
  });
}

/**
 * SentencePiece-BPE with scores, as llama.cpp's `llama` tokenizer (llm_tokenizer_spm) does it:
 *
 * encode: special-token text ("<s>", user-defined pieces) is matched first (control and unknown pieces only
 * where special tokens are parsed, as llama.cpp's parse_special); each remaining stretch of text
 * gets the dummy-prefix space if it starts the input or follows a special token (llama.cpp and HF's
 * legacy Llama tokenizer both do this), spaces become ▁, the text is split into characters, and adjacent
 * symbols merge greedily, the pair whose merged piece has the highest score first (ties: leftmost). A
 * final symbol that is not a piece falls back to one <0xNN> token per UTF-8 byte (or <unk> when the
 * vocabulary has no byte pieces). Only normal pieces are merge targets, as in SentencePiece.
 *
 * decode: ▁ becomes a space, byte tokens become raw bytes joined into UTF-8, control and unknown tokens
 * are dropped unless `skipSpecial` is false, and the space the dummy prefix added at the start of the text
 * is removed (HF's Strip decoder; a sequence shown with its BOS keeps it, as in HF and llama.cpp).
 *
 * Text is handled as UTF-8: a lone UTF-16 surrogate in the input becomes U+FFFD.
 */
export class SentencePieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly stopIds: readonly number[];
  readonly recipe: TokenizerRecipe;
  private readonly tokens: readonly string[];
  private readonly scores: readonly number[];
  private readonly types: readonly number[];
  /** Normal pieces by text: the merge targets and the final lookup. */
  private readonly pieceIds = new Map<string, number>();
  /** Id of <0xNN> for each byte value, -1 when the vocabulary lacks it. */
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly unkId: number | undefined;
  /** What each token decodes to: text with ▁ as space, or the single byte of a byte token. */
  private readonly tokenBytes: Uint8Array[];
  private readonly specials: SpecialTokenSplitter;
  private readonly addBos: boolean;
  private readonly addEos: boolean;
  private readonly addSpacePrefix: boolean;

  /** `source` names the file the vocabulary came from, for error messages. */
  constructor(spec: VocabSpec, source = "tokenizer") {
    const n = spec.tokens.length;
    if (n === 0) throw new InputError(`${source}: the tokenizer vocabulary is empty`);
    if (!spec.scores || spec.scores.length !== n) {
      throw new InputError(`${source}: a SentencePiece vocabulary needs one score per token (${n} tokens)`);
    }
    if (spec.tokenTypes && spec.tokenTypes.length !== n) {
      throw new InputError(`${source}: ${spec.tokenTypes.length} token types for ${n} tokens`);
    }
    this.vocabSize = n;
    this.recipe = { kind: "vocab", spec, source };
    this.tokens = spec.tokens;
    this.scores = spec.scores;
    this.types = sentencePieceTokenTypes(spec);
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    this.stopIds = stopIdsOf(spec.eosId, spec.eotIds);
    this.addBos = spec.addBos && spec.bosId !== undefined;
    this.addEos = spec.addEos && spec.eosId !== undefined;
    this.addSpacePrefix = spec.addSpacePrefix ?? true;
    this.unkId = spec.unkId ?? indexOrUndefined(this.types.indexOf(TokenType.unknown));

    const specials: SpecialToken[] = [];
    this.tokenBytes = this.tokens.map((piece, id) => {
      const type = this.types[id];
      const byte = BYTE_PIECE.exec(piece);
      if (type === TokenType.byte && byte) {
        const value = Number.parseInt(byte[1], 16);
        if (this.byteIds[value] < 0) this.byteIds[value] = id;
        return Uint8Array.of(value);
      }
      if (type === TokenType.normal && !this.pieceIds.has(piece)) this.pieceIds.set(piece, id);
      if (type === TokenType.control || type === TokenType.unknown || type === TokenType.userDefined) {
        specials.push({ text: piece, id, control: type !== TokenType.userDefined });
      }
      if (type === TokenType.unused) return new Uint8Array(0);
      return utf8Encoder.encode(type === TokenType.normal ? piece.replaceAll(SPACE_MARK, " ") : piece);
    });
    this.specials = new SpecialTokenSplitter(specials);
  }

  encode(text: string | readonly TextPart[], opts?: EncodeOptions): number[] {
    const addSpecial = opts?.addSpecial ?? true;
    const ids: number[] = [];
    if (addSpecial && this.addBos) ids.push(this.bosId as number);
    let afterSpecial = true;
    for (const segment of this.specials.splitParts(textParts(text, opts?.parseSpecial))) {
      if ("id" in segment) {
        ids.push(segment.id);
        afterSpecial = true;
        continue;
      }
      const prefixed = this.addSpacePrefix && afterSpecial ? ` ${segment.text}` : segment.text;
      this.encodePlain(prefixed, ids);
      afterSpecial = false;
    }
    if (addSpecial && this.addEos) ids.push(this.eosId as number);
    return ids;
  }

  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string {
    const skipSpecial = opts?.skipSpecial ?? true;
    const chunks: Uint8Array[] = [];
    for (const id of ids) {
      checkTokenId(id, this.vocabSize);
      const type = this.types[id];
      if (skipSpecial && (type === TokenType.control || type === TokenType.unknown)) continue;
      chunks.push(this.tokenBytes[id]);
    }
    const text = decodeByteChunks(chunks);
    return this.addSpacePrefix && text.startsWith(" ") ? text.slice(1) : text;
  }

  idToToken(id: number): string {
    checkTokenId(id, this.vocabSize);
    return this.tokens[id];
  }

  findSpecialText(text: string): string | undefined {
    return this.specials.findControl(text);
  }

  /** Tokenizes text that holds no special tokens; appends the ids to `out`. */
  private encodePlain(text: string, out: number[]): void {
    const symbols = Array.from(text.replaceAll(" ", SPACE_MARK));
    const pieces = mergeSymbols(symbols, (left, right) => {
      const id = this.pieceIds.get(left + right);
      return id === undefined ? undefined : -this.scores[id];
    });
    for (const piece of pieces) {
      const id = this.pieceIds.get(piece);
      if (id !== undefined) out.push(id);
      else this.encodeUnknownPiece(piece, out);
    }
  }

  /** Byte fallback: one <0xNN> per UTF-8 byte; without byte pieces, a single <unk>. */
  private encodeUnknownPiece(piece: string, out: number[]): void {
    const bytes = utf8Encoder.encode(piece);
    if (bytes.every((b) => this.byteIds[b] >= 0)) {
      for (const b of bytes) out.push(this.byteIds[b]);
    } else if (this.unkId !== undefined) {
      out.push(this.unkId);
    } else {
      throw new InputError(`cannot tokenize "${piece}": the vocabulary has neither byte pieces nor <unk>`);
    }
  }
}

function indexOrUndefined(index: number): number | undefined {
  return index < 0 ? undefined : index;
}

import { InputError } from "../errors.js";
import { mergeSymbols } from "./bpe-merge.js";
import type { TextSegment } from "./special-tokens.js";
import { utf8Encoder } from "./token-bytes.js";
import { TokenType, type VocabSpec } from "./tokenizer.js";
import { type VocabEntry, VocabTokenizer } from "./vocab-tokenizer.js";

/** SentencePiece's visible space: pieces spell " " as U+2581. */
export const SPACE_MARK = "\u2581";
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** Id of the first normal piece in llama2.c's layout: after <unk>, <s>, </s> and the 256 byte pieces. */
export const FIRST_PIECE_ID = 259;

/**
 * A `llama` vocabulary in llama2.c's (and Llama 2's) layout: <unk> 0, <s> 1 (BOS), </s> 2 (EOS), the byte
 * pieces <0x00>..<0xFF> (ids 3..258), then `pieces`, normal, each with its score.
 */
export function sentencePieceVocab(pieces: readonly (readonly [string, number])[]): VocabSpec {
  const bytePieces = Array.from(
    { length: 256 },
    (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`,
  );
  return {
    model: "llama",
    tokens: ["<unk>", "<s>", "</s>", ...bytePieces, ...pieces.map(([piece]) => piece)],
    scores: [0, 0, 0, ...bytePieces.map(() => 0), ...pieces.map(([, score]) => score)],
    tokenTypes: [
      TokenType.unknown,
      TokenType.control,
      TokenType.control,
      ...bytePieces.map(() => TokenType.byte),
      ...pieces.map(() => TokenType.normal),
    ],
    unkId: 0,
    bosId: 1,
    eosId: 2,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
  };
}

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
export class SentencePieceTokenizer extends VocabTokenizer {
  private readonly scores: readonly number[];
  /** Normal pieces by text: the merge targets and the final lookup. */
  private readonly pieceIds = new Map<string, number>();
  /** Id of <0xNN> for each byte value, -1 when the vocabulary lacks it. */
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly unkId: number | undefined;
  private readonly addSpacePrefix: boolean;

  /** `source` names the file the vocabulary came from, for error messages. */
  constructor(spec: VocabSpec, source = "tokenizer") {
    const types = sentencePieceTokenTypes(spec);
    super(spec, source, types, sentencePieceEntry);
    if (!spec.scores || spec.scores.length !== this.vocabSize) {
      throw new InputError(
        `${source}: a SentencePiece vocabulary needs one score per token (${this.vocabSize} tokens)`,
      );
    }
    this.scores = spec.scores;
    this.addSpacePrefix = spec.addSpacePrefix ?? true;
    this.unkId = spec.unkId ?? indexOrUndefined(types.indexOf(TokenType.unknown));
    spec.tokens.forEach((piece, id) => {
      const byte = byteValue(piece, types[id]);
      if (byte !== undefined && this.byteIds[byte] < 0) this.byteIds[byte] = id;
      if (types[id] === TokenType.normal && !this.pieceIds.has(piece)) this.pieceIds.set(piece, id);
    });
  }

  protected encodeSegments(segments: readonly TextSegment[], out: number[]): void {
    let afterSpecial = true;
    for (const segment of segments) {
      if ("id" in segment) {
        out.push(segment.id);
        afterSpecial = true;
        continue;
      }
      const prefixed = this.addSpacePrefix && afterSpecial ? ` ${segment.text}` : segment.text;
      this.encodePlain(prefixed, out);
      afterSpecial = false;
    }
  }

  override decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string {
    const text = super.decode(ids, opts);
    return this.addSpacePrefix && text.startsWith(" ") ? text.slice(1) : text;
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

/**
 * Byte tokens decode to their byte, normal pieces to their text with ▁ as space; control, unknown and
 * user-defined pieces are special tokens.
 */
function sentencePieceEntry(piece: string, type: number): VocabEntry {
  const byte = byteValue(piece, type);
  if (byte !== undefined) return { bytes: Uint8Array.of(byte) };
  if (type === TokenType.unused) return { bytes: new Uint8Array(0) };
  if (type === TokenType.normal) return { bytes: utf8Encoder.encode(piece.replaceAll(SPACE_MARK, " ")) };
  const special =
    type === TokenType.control || type === TokenType.unknown || type === TokenType.userDefined
      ? { control: type !== TokenType.userDefined }
      : undefined;
  return { bytes: utf8Encoder.encode(piece), special };
}

/** The byte a byte token spelled <0xNN> stands for; undefined for any other token. */
function byteValue(piece: string, type: number): number | undefined {
  const byte = type === TokenType.byte ? BYTE_PIECE.exec(piece) : null;
  return byte ? Number.parseInt(byte[1], 16) : undefined;
}

function indexOrUndefined(index: number): number | undefined {
  return index < 0 ? undefined : index;
}

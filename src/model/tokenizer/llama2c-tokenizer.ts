import { readFileSync } from "node:fs";
import { InputError } from "../errors.js";
import { SPACE_MARK } from "./sentencepiece.js";
import { TokenType, type VocabSpec } from "./tokenizer.js";

const UNK_ID = 0;
const BOS_ID = 1;
const EOS_ID = 2;
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

/** Reads a llama2.c `tokenizer.bin` (see parseLlama2cTokenizer); a missing file is an InputError too. */
export function loadLlama2cTokenizer(path: string, vocabSize: number): VocabSpec {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new InputError(`${path}: cannot read tokenizer (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  return parseLlama2cTokenizer(bytes, vocabSize, path);
}

/**
 * Parses llama2.c's tokenizer.bin into a SentencePiece `llama` VocabSpec.
 *
 * Layout (little-endian): int32 max_token_length, then `vocabSize` records of
 * { float32 score, int32 len, len bytes of UTF-8 piece }, and nothing after them. The file does not store
 * its token count, so `vocabSize` comes from the model header and must account for the file exactly.
 *
 * llama2.c spells the SentencePiece space ▁ as an ASCII space and BOS/EOS as "\n<s>\n" / "\n</s>\n";
 * the spec uses SentencePiece's own spelling (▁, "<s>", "</s>") so it can be written to GGUF as is.
 * Ids 0, 1, 2 are <unk>, BOS, EOS; pieces spelled <0xNN> are byte-fallback tokens.
 */
export function parseLlama2cTokenizer(bytes: Uint8Array, vocabSize: number, file: string): VocabSpec {
  if (!Number.isInteger(vocabSize) || vocabSize < 3) {
    throw new InputError(`${file}: vocabulary size ${vocabSize} is too small for <unk>, <s>, </s>`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  if (bytes.length < 4)
    throw new InputError(`${file}: truncated tokenizer: no header (${bytes.length} bytes)`);

  const tokens: string[] = [];
  const scores: number[] = [];
  const tokenTypes: number[] = [];
  let offset = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (offset + 8 > bytes.length) {
      throw new InputError(
        `${file}: tokenizer ends at byte ${offset} after ${id} tokens, but the model's vocabulary has ${vocabSize}`,
      );
    }
    const score = view.getFloat32(offset, true);
    const len = view.getInt32(offset + 4, true);
    offset += 8;
    if (len < 0 || offset + len > bytes.length) {
      throw new InputError(
        `${file}: token ${id} at byte ${offset - 4} has length ${len} past the end of the file`,
      );
    }
    let text: string;
    try {
      text = utf8.decode(bytes.subarray(offset, offset + len));
    } catch {
      throw new InputError(`${file}: token ${id} at byte ${offset} is not valid UTF-8`);
    }
    offset += len;
    const [piece, type] = specPiece(id, text);
    tokens.push(piece);
    scores.push(score);
    tokenTypes.push(type);
  }
  if (offset !== bytes.length) {
    throw new InputError(
      `${file}: ${bytes.length - offset} bytes left after ${vocabSize} tokens: the tokenizer does not match the model's vocabulary size`,
    );
  }
  return {
    model: "llama",
    tokens,
    scores,
    tokenTypes,
    unkId: UNK_ID,
    bosId: BOS_ID,
    eosId: EOS_ID,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
  };
}

/** The SentencePiece spelling and GGUF token type of llama2.c token `id` with text `text`. */
function specPiece(id: number, text: string): [string, number] {
  if (id === UNK_ID) return ["<unk>", TokenType.unknown];
  if (id === BOS_ID) return ["<s>", TokenType.control];
  if (id === EOS_ID) return ["</s>", TokenType.control];
  if (BYTE_PIECE.test(text)) return [text, TokenType.byte];
  return [text.replaceAll(" ", SPACE_MARK), TokenType.normal];
}

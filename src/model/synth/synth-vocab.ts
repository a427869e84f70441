import { FIRST_PIECE_ID, sentencePieceVocab } from "../tokenizer/sentencepiece.js";
import type { VocabSpec } from "../tokenizer/tokenizer.js";

const space = "\u2581";
const letters = "abcdefghijklmnopqrstuvwxyz";
const singles = `${letters}${letters.toUpperCase()}0123456789.,;:!?'"()-`;

/**
 * A valid SentencePiece-style vocabulary of exactly `size` tokens for a synthetic model:
 * <unk>, <s>, </s>, the 256 byte-fallback tokens <0x00>..<0xFF>, "▁", then generated pieces —
 * single characters (with and without a leading ▁), then lowercase strings of length 2, 3, … in
 * lexicographic order, each with and without ▁. Every piece's prefixes come before it, so any piece is
 * reachable by merges; scores fall with the index so shorter pieces merge first.
 */
export function syntheticVocab(size: number): VocabSpec {
  if (size < FIRST_PIECE_ID + 1) {
    throw new RangeError(`a synthetic vocabulary needs at least ${FIRST_PIECE_ID + 1} tokens`);
  }
  const pieces = pieceSequence();
  const scored: [string, number][] = [];
  for (let id = FIRST_PIECE_ID; id < size; id++) scored.push([pieces.next().value as string, -id]);
  return sentencePieceVocab(scored);
}

function* pieceSequence(): Generator<string> {
  yield space;
  for (const c of singles) yield c;
  for (const c of singles) yield space + c;
  let words = [...letters];
  while (true) {
    const longer: string[] = [];
    for (const w of words) for (const c of letters) longer.push(w + c);
    for (const w of longer) {
      yield w;
      yield space + w;
    }
    words = longer;
  }
}

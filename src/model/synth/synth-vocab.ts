import { FIRST_PIECE_ID, sentencePieceVocab } from "../tokenizer/sentencepiece.js";
import { TokenType, type VocabSpec } from "../tokenizer/tokenizer.js";

const space = "\u2581";
const letters = "abcdefghijklmnopqrstuvwxyz";
const singles = `${letters}${letters.toUpperCase()}0123456789.,;:!?'"()-`;

/**
 * A valid SentencePiece-style vocabulary of exactly `size` tokens for a synthetic model:
 * <unk>, <s>, </s>, the 256 byte-fallback tokens <0x00>..<0xFF>, "▁", then generated pieces —
 * single characters (with and without a leading ▁), then lowercase strings of length 2, 3, … in
 * lexicographic order, each with and without ▁ — and last the `controlTokens` it does not hold already, as
 * control tokens. Every piece's prefixes come before it, so any piece is reachable by merges; scores fall
 * with the index so shorter pieces merge first.
 */
export function syntheticVocab(size: number, controlTokens: readonly string[] = []): VocabSpec {
  if (size < FIRST_PIECE_ID + 1) {
    throw new RangeError(`a synthetic vocabulary needs at least ${FIRST_PIECE_ID + 1} tokens`);
  }
  const pieces = pieceSequence();
  const scored: [string, number][] = [];
  for (let id = FIRST_PIECE_ID; id < size; id++) scored.push([pieces.next().value as string, -id]);
  const vocab = sentencePieceVocab(scored);
  // The control tokens take the places of the last pieces, which no other piece is merged from.
  const extra = controlTokens.filter((token) => !vocab.tokens.includes(token));
  const kept = size - extra.length;
  return {
    ...vocab,
    tokens: [...vocab.tokens.slice(0, kept), ...extra],
    scores: [...(vocab.scores ?? []).slice(0, kept), ...extra.map(() => 0)],
    tokenTypes: [...(vocab.tokenTypes ?? []).slice(0, kept), ...extra.map(() => TokenType.control)],
  };
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

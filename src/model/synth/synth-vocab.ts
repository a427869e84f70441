import { TokenType, type VocabSpec } from "../tokenizer/tokenizer.js";

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
  const tokens = ["<unk>", "<s>", "</s>"];
  const tokenTypes: number[] = [TokenType.unknown, TokenType.control, TokenType.control];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    tokenTypes.push(TokenType.byte);
  }
  if (size < tokens.length + 1)
    throw new RangeError(`a synthetic vocabulary needs at least ${tokens.length + 1} tokens`);
  const pieces = pieceSequence();
  while (tokens.length < size) {
    tokens.push(pieces.next().value as string);
    tokenTypes.push(TokenType.normal);
  }
  return {
    model: "llama",
    tokens,
    scores: tokens.map((_, i) => (tokenTypes[i] === TokenType.normal ? -i : 0)),
    tokenTypes,
    bosId: 1,
    eosId: 2,
    unkId: 0,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
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

/**
 * A SentencePiece-style BPE trainer: learns a `llama` (SentencePiece-BPE with scores) vocabulary that vellum's
 * SentencePieceTokenizer and llama.cpp encode identically.
 *
 * Vocabulary layout (ids): <unk>, <s>, </s>, the 256 byte-fallback pieces <0x00>..<0xFF>, then the merged
 * pieces in the order they were learned (score −1, −2, …: earlier merges win when encoding), then the single
 * characters (scores below every merge; characters are never merge results, so their scores only order them).
 *
 * Training: the text is cut into words — an optional leading space (▁) and a run of letters, a run of digits,
 * or one other character; other whitespace (newlines) is left to byte fallback. Each word starts as its
 * characters; repeatedly the most frequent adjacent pair (ties: the one first seen) becomes a new piece,
 * counting a word as often as it occurs. Pieces therefore never cross a word boundary, and a ▁ only ever
 * starts a piece.
 */
import { FIRST_PIECE_ID, SPACE_MARK, sentencePieceVocab } from "../model/tokenizer/sentencepiece.js";
import type { VocabSpec } from "../model/tokenizer/tokenizer.js";

const WORD = /( ?)(\p{L}+|\p{N}+|[^\s\p{L}\p{N}])|( )/gu;

/** Word → how often it occurs, with spaces already spelled ▁. */
export function countWords(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(WORD)) {
      const word = m[0].replace(" ", SPACE_MARK);
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  return counts;
}

/** Learns a vocabulary of exactly `vocabSize` tokens (fewer only if the text runs out of pairs). */
export function trainBpeVocab(texts: Iterable<string>, vocabSize: number): VocabSpec {
  const wordCounts = countWords(texts);

  // Symbols: ids into `pieces`; characters first (most frequent first, for a stable order).
  const charCounts = new Map<string, number>();
  for (const [word, n] of wordCounts)
    for (const ch of word) charCounts.set(ch, (charCounts.get(ch) ?? 0) + n);
  const chars = [...charCounts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([ch]) => ch);
  const numMerges = vocabSize - FIRST_PIECE_ID - chars.length;
  if (numMerges < 0)
    throw new RangeError(
      `vocabulary size ${vocabSize} is below the ${FIRST_PIECE_ID + chars.length} fixed tokens and characters`,
    );
  const pieces = [...chars];
  const pieceIds = new Map(pieces.map((p, i) => [p, i]));

  const words = [...wordCounts.keys()].map((w) => Array.from(w, (ch) => pieceIds.get(ch) as number));
  const freq = [...wordCounts.values()];
  const merged: number[] = [];

  // Pair counts and, per pair, the words that contain it. Pair key: left · 2^16 + right.
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: number) => {
    const s = words[w];
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i] * 65536 + s[i + 1];
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * freq[w]);
      if (sign > 0) {
        const set = pairWords.get(key);
        if (set) set.add(w);
        else pairWords.set(key, new Set([w]));
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);

  while (merged.length < numMerges) {
    let best = -1;
    let bestCount = 0;
    for (const [key, n] of pairCounts) {
      if (n > bestCount) {
        best = key;
        bestCount = n;
      }
    }
    if (best < 0) break;
    const left = Math.floor(best / 65536);
    const right = best % 65536;
    const text = pieces[left] + pieces[right];
    let id = pieceIds.get(text);
    if (id === undefined) {
      id = pieces.length;
      pieces.push(text);
      pieceIds.set(text, id);
      merged.push(id);
    }
    for (const w of pairWords.get(best) ?? []) {
      addPairs(w, -1);
      const s = words[w];
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === left && s[i + 1] === right) {
          out.push(id);
          i++;
        } else out.push(s[i]);
      }
      words[w] = out;
      addPairs(w, 1);
    }
    pairWords.delete(best);
    pairCounts.delete(best);
    for (const [key, n] of pairCounts) if (n === 0) pairCounts.delete(key);
  }

  return sentencePieceVocab([
    ...merged.map((id, i): [string, number] => [pieces[id], -(i + 1)]),
    ...chars.map((ch, i): [string, number] => [ch, -(merged.length + 1 + i)]),
  ]);
}

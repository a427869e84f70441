import type { Tokenizer } from "../model/tokenizer/tokenizer.js";
import { Rng } from "../util/rng.js";
import type { Book } from "./corpus.js";

/**
 * A split of the corpus as one token stream: every verse encoded on its own (with SentencePiece's dummy-prefix
 * space, no BOS) and concatenated, so the stream reads as the verses joined by single spaces.
 */
export interface TokenStream {
  tokens: Int32Array;
  /** Stream offset of each verse's first token: training windows start there. */
  verseStarts: Int32Array;
  /** UTF-8 bytes of the text the stream encodes (each verse plus its leading space). */
  bytes: number;
}

export function encodeBooks(tokenizer: Tokenizer, books: readonly Book[]): TokenStream {
  const tokens: number[] = [];
  const starts: number[] = [];
  let bytes = 0;
  const encoder = new TextEncoder();
  for (const book of books) {
    for (const verse of book.verses) {
      starts.push(tokens.length);
      for (const id of tokenizer.encode(verse, { addSpecial: false })) tokens.push(id);
      bytes += encoder.encode(` ${verse}`).length;
    }
  }
  return { tokens: Int32Array.from(tokens), verseStarts: Int32Array.from(starts), bytes };
}

/** B sequences of T rows, flattened: row b·T + t. A target < 0 is not counted. */
export interface Batch {
  inputs: Int32Array;
  targets: Int32Array;
}

/**
 * The training batch of step `step`: B windows, each starting at a random verse, fed as BOS followed by the
 * window's first T − 1 tokens and predicting its T tokens. Drawn from a generator seeded by (seed, step), so a
 * resumed run sees exactly the batches an uninterrupted run would.
 */
export function trainingBatch(
  stream: TokenStream,
  B: number,
  T: number,
  bosId: number,
  seed: number,
  step: number,
): Batch {
  const rng = new Rng(seed * 1_000_003 + step);
  let usable = stream.verseStarts.length;
  while (usable > 0 && stream.verseStarts[usable - 1] + T > stream.tokens.length) usable--;
  if (usable === 0) throw new RangeError(`the training text is shorter than one window of ${T} tokens`);
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const start = stream.verseStarts[rng.nextUint32() % usable];
    fillWindow(stream.tokens, start, T, bosId, inputs, targets, b * T);
  }
  return { inputs, targets };
}

/**
 * Every token of the stream exactly once, for evaluation: consecutive windows of T tokens (each after a BOS),
 * B per batch; the rows past the end carry target −1.
 */
export function* evaluationBatches(
  stream: TokenStream,
  B: number,
  T: number,
  bosId: number,
): Generator<Batch> {
  const windows = Math.ceil(stream.tokens.length / T);
  for (let w0 = 0; w0 < windows; w0 += B) {
    const inputs = new Int32Array(B * T).fill(bosId);
    const targets = new Int32Array(B * T).fill(-1);
    for (let b = 0; b < B && w0 + b < windows; b++)
      fillWindow(stream.tokens, (w0 + b) * T, T, bosId, inputs, targets, b * T);
    yield { inputs, targets };
  }
}

/** Row `at + t` predicts tokens[start + t] from BOS and tokens[start .. start + t − 1]; past the end: −1. */
function fillWindow(
  tokens: Int32Array,
  start: number,
  T: number,
  bosId: number,
  inputs: Int32Array,
  targets: Int32Array,
  at: number,
) {
  for (let t = 0; t < T; t++) {
    inputs[at + t] = t === 0 ? bosId : tokens[start + t - 1];
    targets[at + t] = start + t < tokens.length ? tokens[start + t] : -1;
  }
}

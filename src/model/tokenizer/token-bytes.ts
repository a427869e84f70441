import { InputError } from "../errors.js";

/** Helpers shared by the tokenizers that decode by concatenating each token's bytes. */

export const utf8Encoder = new TextEncoder();
/** Non-fatal: a broken UTF-8 sequence (e.g. a cut-off multi-byte character) decodes to U+FFFD. */
const utf8Decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** Concatenates byte chunks and decodes them as UTF-8 in one go, so byte tokens join into characters. */
export function decodeByteChunks(chunks: readonly Uint8Array[]): string {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return utf8Decoder.decode(bytes);
}

/** Throws an InputError for an id that is not an integer in [0, vocabSize). */
export function checkTokenId(id: number, vocabSize: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new InputError(`token id ${id} is outside the vocabulary (0..${vocabSize - 1})`);
  }
}

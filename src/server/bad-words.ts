import type { ServerContext } from "./context.js";
import { encodeTexts } from "./encode.js";
import { ApiError } from "./errors.js";

/**
 * bad_words as token sequences, as vLLM makes them: each word (leading spaces dropped) as written, and with a
 * leading space where that spells it with a different first token in as many tokens (so the word is banned at
 * the start of the text and after a space alike). The words are plain text: special-token text stays text.
 */
export async function badWordIds(ctx: ServerContext, words: readonly string[]): Promise<number[][]> {
  if (words.length === 0) return [];
  if (words.some((word) => word.trim() === ""))
    throw new ApiError(400, "bad_words: a word must have more than spaces", "bad_words");
  const texts = words.flatMap((word) => [word.trimStart(), ` ${word.trimStart()}`]);
  const ids = await encodeTexts(
    ctx,
    texts.map((text) => ({ text, addSpecial: false, parseSpecial: false })),
    "bad_words",
  );
  return words.flatMap((_, i) => {
    const [bare, spaced] = [ids[2 * i], ids[2 * i + 1]];
    const distinct = spaced[0] !== bare[0] && spaced.length === bare.length;
    return distinct ? [bare, spaced] : [bare];
  });
}

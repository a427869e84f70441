import type { Tokenizer } from "../src/model/tokenizer/tokenizer.js";

/** Genesis 1:1–8: text of the kind the bundled demo model was trained on (Genesis is in its training split). */
export const genesis =
  "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness " +
  "was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there " +
  "be light: and there was light. And God saw the light, that it was good: and God divided the light from the " +
  "darkness. And God called the light Day, and the darkness he called Night. And the evening and the morning were " +
  "the first day. And God said, Let there be a firmament in the midst of the waters, and let it divide the waters " +
  "from the waters. And God made the firmament, and divided the waters which were under the firmament from the " +
  "waters which were above the firmament: and it was so. And God called the firmament Heaven. And the evening and " +
  "the morning were the second day.";

/** A batch of prompts for the demo model: BOS alone, then openings of verses, 4 to 15 tokens long. */
export function versePrompts(tokenizer: Tokenizer): number[][] {
  return [
    [1],
    ...[
      "In the beginning",
      "And God said, Let there be light: and there was light.",
      "The LORD is my shepherd; I shall not",
      "Blessed are the",
    ].map((text) => tokenizer.encode(text)),
  ];
}

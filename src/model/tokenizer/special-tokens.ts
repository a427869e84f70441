/** A piece of input text: plain text still to tokenize, or a special token already matched to its id. */
export type TextSegment = { text: string } | { id: number };

interface SpecialToken {
  text: string;
  id: number;
}

/**
 * Finds special-token text (e.g. "<s>", "<|im_start|>") in input so it becomes that token instead of
 * being tokenized as characters, like llama.cpp's parse_special and HF's added tokens. Matching is
 * leftmost-longest: scanning left to right, the longest special token starting at a position wins.
 */
export class SpecialTokenSplitter {
  /** Candidates by their first UTF-16 unit, longest first; most positions have none, so the scan is cheap. */
  private readonly byFirstUnit = new Map<string, SpecialToken[]>();

  constructor(tokens: Iterable<SpecialToken>) {
    for (const token of tokens) {
      if (token.text === "") continue;
      const list = this.byFirstUnit.get(token.text[0]) ?? [];
      list.push(token);
      this.byFirstUnit.set(token.text[0], list);
    }
    for (const list of this.byFirstUnit.values()) list.sort((a, b) => b.text.length - a.text.length);
  }

  split(text: string): TextSegment[] {
    const segments: TextSegment[] = [];
    let plainStart = 0;
    let i = 0;
    while (i < text.length) {
      const match = this.byFirstUnit.get(text[i])?.find((t) => text.startsWith(t.text, i));
      if (match === undefined) {
        i++;
        continue;
      }
      if (i > plainStart) segments.push({ text: text.slice(plainStart, i) });
      segments.push({ id: match.id });
      i += match.text.length;
      plainStart = i;
    }
    if (plainStart < text.length) segments.push({ text: text.slice(plainStart) });
    return segments;
  }
}

import type { TextPart } from "./tokenizer.js";

/** A piece of input text: plain text still to tokenize, or a special token already matched to its id. */
export type TextSegment = { text: string } | { id: number };

export interface SpecialToken {
  text: string;
  id: number;
  /**
   * A control token (BOS, EOS, <|im_start|>, <unk>): matched only where special tokens are parsed. Others
   * (user-defined added words) are ordinary text pieces and match everywhere.
   */
  control: boolean;
  /** Swallows the whitespace after it (llama.cpp's RSTRIP attribute, tokenizer.json's rstrip). */
  rstrip?: boolean;
  /** Swallows the whitespace before it (LSTRIP, lstrip). */
  lstrip?: boolean;
}

/** The whitespace a stripping token swallows: C's isspace, as llama.cpp tests each byte. */
const leadingSpace = /^[ \t\n\v\f\r]+/;
const trailingSpace = /[ \t\n\v\f\r]+$/;

/**
 * Finds special-token text (e.g. "<s>", "<|im_start|>") in input so it becomes that token instead of
 * being tokenized as characters, like llama.cpp's parse_special and HF's added tokens. Matching is
 * leftmost-longest: scanning left to right, the longest special token starting at a position wins.
 */
export class SpecialTokenSplitter {
  /** Candidates by their first UTF-16 unit, longest first; most positions have none, so the scan is cheap. */
  private readonly byFirstUnit = new Map<string, SpecialToken[]>();
  private readonly rstripIds = new Set<number>();
  private readonly lstripIds = new Set<number>();

  constructor(tokens: Iterable<SpecialToken>) {
    for (const token of tokens) {
      if (token.text === "") continue;
      if (token.rstrip) this.rstripIds.add(token.id);
      if (token.lstrip) this.lstripIds.add(token.id);
      const list = this.byFirstUnit.get(token.text[0]) ?? [];
      list.push(token);
      this.byFirstUnit.set(token.text[0], list);
    }
    for (const list of this.byFirstUnit.values()) list.sort((a, b) => b.text.length - a.text.length);
  }

  /** `text` as plain text and special tokens; control tokens only when `parseSpecial`. */
  split(text: string, parseSpecial = true): TextSegment[] {
    const segments: TextSegment[] = [];
    let plainStart = 0;
    let i = 0;
    while (i < text.length) {
      const match = this.matchAt(text, i, parseSpecial);
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

  /**
   * Parts split one by one (control tokens only in the parts that parse special tokens), with the plain
   * text on both sides of a part boundary joined into one segment, as if the parts were one string; then
   * the whitespace that stripping tokens swallow is dropped from the text beside them.
   */
  splitParts(parts: readonly TextPart[]): TextSegment[] {
    const segments: TextSegment[] = [];
    for (const part of parts) {
      for (const segment of this.split(part.text, part.parseSpecial)) {
        const last = segments.at(-1);
        if ("text" in segment && last !== undefined && "text" in last) last.text += segment.text;
        else segments.push(segment);
      }
    }
    return segments.flatMap((segment, i): TextSegment[] => {
      if (!("text" in segment)) return [segment];
      const before = segments[i - 1];
      const after = segments[i + 1];
      let text = segment.text;
      if (before !== undefined && "id" in before && this.rstripIds.has(before.id)) {
        text = text.replace(leadingSpace, "");
      }
      if (after !== undefined && "id" in after && this.lstripIds.has(after.id)) {
        text = text.replace(trailingSpace, "");
      }
      return text === "" ? [] : [{ text }];
    });
  }

  /** The first control-token text in `text` (what parsing special tokens would turn into a token). */
  findControl(text: string): string | undefined {
    for (let i = 0; i < text.length; i++) {
      const match = this.matchAt(text, i, true);
      if (match?.control) return match.text;
    }
    return undefined;
  }

  private matchAt(text: string, i: number, parseSpecial: boolean): SpecialToken | undefined {
    return this.byFirstUnit
      .get(text[i])
      ?.find((t) => (parseSpecial || !t.control) && text.startsWith(t.text, i));
  }
}

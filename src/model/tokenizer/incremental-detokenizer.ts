import type { Tokenizer } from "./tokenizer.js";

/** How many prompt tokens before the first generated one are decoded with it for context (vLLM's value). */
const PROMPT_CONTEXT_TOKENS = 5;
const REPLACEMENT_CHAR = "\uFFFD";

/**
 * Streaming detokenization for any Tokenizer, by vLLM's prefix/read-offset method. Decoding tokens one by
 * one does not work: a token's text depends on its neighbours (SentencePiece drops the leading space of
 * the first token decoded; a character split into byte tokens is garbage until its last byte arrives). So
 * each push decodes a small window twice — tokens [prefixOffset, readOffset), already emitted, and
 * [prefixOffset, end) — and emits what the second adds to the first. While the window ends in U+FFFD (an
 * incomplete UTF-8 character) nothing is emitted and the offsets stay, so no broken character escapes.
 *
 * Given `promptIds`, the first generated tokens are decoded after the prompt's last few tokens, so a
 * continuation keeps its leading space. The pushes plus flush() add up to decode(generated ids) without
 * a prompt, and to decode(prompt + generated) minus decode(prompt) with one.
 */
export class IncrementalDetokenizer {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;
  private readonly skipSpecial: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    promptIds: readonly number[] = [],
    opts?: { skipSpecial?: boolean },
  ) {
    this.ids = [...promptIds];
    this.readOffset = promptIds.length;
    this.prefixOffset = Math.max(0, promptIds.length - PROMPT_CONTEXT_TOKENS);
    this.skipSpecial = opts?.skipSpecial ?? true;
  }

  /** Adds one token; returns the text it completes (often "", e.g. inside a multi-byte character). */
  push(tokenId: number): string {
    this.ids.push(tokenId);
    const { prefixText, fullText } = this.decodeWindow();
    if (fullText.length <= prefixText.length || fullText.endsWith(REPLACEMENT_CHAR)) return "";
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return fullText.slice(prefixText.length);
  }

  /** Returns whatever is still held back (a character that never completed decodes to U+FFFD). */
  flush(): string {
    const { prefixText, fullText } = this.decodeWindow();
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return fullText.slice(prefixText.length);
  }

  private decodeWindow(): { prefixText: string; fullText: string } {
    const opts = { skipSpecial: this.skipSpecial };
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), opts);
    const fullText = this.tokenizer.decode(this.ids.slice(this.prefixOffset), opts);
    return { prefixText, fullText };
  }
}

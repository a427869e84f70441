import type { PromptTokenLogprob, SampledToken } from "../engine/api.js";
import type { Tokenizer } from "../model/tokenizer/tokenizer.js";

/**
 * One token's text as logprobs show it. Decoding a lone SentencePiece token drops its leading space
 * (the "dummy prefix" rule), so a piece spelled "▁the" gets its space back; control tokens that decode
 * to nothing show their piece ("</s>").
 */
export function tokenText(tokenizer: Tokenizer, id: number): string {
  const piece = tokenizer.idToToken(id);
  const text = tokenizer.decode([id]);
  if (piece.startsWith("▁") && !text.startsWith(" ")) return ` ${text}`;
  return text === "" ? piece : text;
}

/** /v1/completions `logprobs`: parallel arrays, one entry per generated token. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  /** Offset of each token's text in the choice's text. */
  text_offset: number[];
}

/**
 * Logprobs of `samples` in the completions shape, `topN` alternatives each. `offset` is where the first
 * token's text starts; the returned `end` is where the next call should start.
 */
export function completionLogprobs(
  tokenizer: Tokenizer,
  samples: readonly SampledToken[],
  topN: number,
  offset: number,
): { logprobs: CompletionLogprobs; end: number } {
  const logprobs: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let end = offset;
  for (const s of samples) {
    const text = tokenText(tokenizer, s.tokenId);
    logprobs.tokens.push(text);
    logprobs.token_logprobs.push(s.logprob ?? 0);
    const top: Record<string, number> = {};
    for (const t of (s.topLogprobs ?? []).slice(0, topN)) top[tokenText(tokenizer, t.tokenId)] = t.logprob;
    logprobs.top_logprobs.push(top);
    logprobs.text_offset.push(end);
    end += text.length;
  }
  return { logprobs, end };
}

interface ChatTokenLogprob {
  token: string;
  logprob: number;
  /** The token text's UTF-8 bytes. */
  bytes: number[];
}

/** /v1/chat/completions `logprobs.content`: one entry per generated token, `topN` alternatives each. */
export function chatLogprobs(
  tokenizer: Tokenizer,
  samples: readonly SampledToken[],
  topN: number,
): (ChatTokenLogprob & { top_logprobs: ChatTokenLogprob[] })[] {
  const entry = (tokenId: number, logprob: number): ChatTokenLogprob => {
    const token = tokenText(tokenizer, tokenId);
    return { token, logprob, bytes: [...Buffer.from(token, "utf8")] };
  };
  return samples.map((s) => ({
    ...entry(s.tokenId, s.logprob ?? 0),
    top_logprobs: (s.topLogprobs ?? []).slice(0, topN).map((t) => entry(t.tokenId, t.logprob)),
  }));
}

/** One entry of vLLM's prompt_logprobs: by token id, its log-prob, its rank at that position and its text. */
type PromptLogprobsEntry = Record<number, { logprob: number; rank: number; decoded_token: string }>;

/**
 * vLLM's prompt_logprobs: null for the prompt's first token, then per token its own entry and its position's
 * best `k`, ranked 1 … k.
 */
export function promptLogprobs(
  tokenizer: Tokenizer,
  entries: readonly PromptTokenLogprob[],
): (PromptLogprobsEntry | null)[] {
  const entry = (tokenId: number, logprob: number, rank: number) => ({
    logprob,
    rank,
    decoded_token: tokenText(tokenizer, tokenId),
  });
  return [
    null,
    ...entries.map((e) => {
      const shown: PromptLogprobsEntry = { [e.tokenId]: entry(e.tokenId, e.logprob, e.rank) };
      e.top.forEach((t, i) => {
        shown[t.tokenId] ??= entry(t.tokenId, t.logprob, i + 1);
      });
      return shown;
    }),
  ];
}

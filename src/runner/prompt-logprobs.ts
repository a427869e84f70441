import type { Request } from "../core/request.js";
import type { ScheduledRequest } from "../core/scheduler-output.js";
import { logSumExp, type TokenLogprob, topN } from "./sampler.js";

/**
 * One prompt token's log-probability under the logits of the position before it (vLLM's prompt_logprobs): raw
 * logits, as for sampled tokens. The prompt's first token has none.
 */
export interface PromptTokenLogprob {
  tokenId: number;
  logprob: number;
  /** 1 for the most likely token at that position; tokens of equal logit share a rank (vLLM's). */
  rank: number;
  /** The `promptLogprobs` most likely tokens there, best first. */
  top: TokenLogprob[];
}

/** Prompt positions [from, to) of one scheduled chunk whose logits rows are wanted. */
export interface PromptRows {
  from: number;
  to: number;
}

/**
 * Gathers the prompt log-probs of the requests that ask for them, chunk by chunk over a chunked prefill, and
 * hands them over with the request's first sampled token. Position p's logits give the log-prob of prompt token
 * p + 1. A request preempted before its first token recomputes its prompt: positions it already has are not
 * asked for again; one preempted later has handed them over already and asks for none.
 */
export class PromptLogprobsCollector {
  private readonly gathered = new Map<string, PromptTokenLogprob[]>();

  /** The rows of this chunk to compute, or undefined when none. */
  rowsWanted({ request, numComputedTokens, numNewTokens }: ScheduledRequest): PromptRows | undefined {
    if (!this.wants(request)) return undefined;
    const from = Math.max(numComputedTokens, this.gathered.get(request.id)?.length ?? 0);
    const to = Math.min(numComputedTokens + numNewTokens, request.promptTokenIds.length - 1);
    return from < to ? { from, to } : undefined;
  }

  /** `rows` holds the logits of positions rows.from … rows.to - 1, one vocabulary-sized row each. */
  add(request: Request, rows: PromptRows, logits: Float32Array, vocabSize: number): void {
    let gathered = this.gathered.get(request.id);
    if (!gathered) {
      gathered = [];
      this.gathered.set(request.id, gathered);
    }
    const k = request.samplingParams.promptLogprobs ?? 0;
    for (let pos = rows.from; pos < rows.to; pos++) {
      const row = logits.subarray((pos - rows.from) * vocabSize, (pos - rows.from + 1) * vocabSize);
      const tokenId = request.promptTokenIds[pos + 1];
      const logNormalizer = logSumExp(row);
      let above = 0;
      for (let i = 0; i < row.length; i++) if (row[i] > row[tokenId]) above++;
      gathered.push({
        tokenId,
        logprob: row[tokenId] - logNormalizer,
        rank: above + 1,
        top: k > 0 ? topN(row, k, logNormalizer) : [],
      });
    }
  }

  /** At the request's first sampled token: its whole prompt's log-probs (undefined when it did not ask). */
  take(request: Request): PromptTokenLogprob[] | undefined {
    if (!this.wants(request)) return undefined;
    const gathered = this.gathered.get(request.id) ?? [];
    this.gathered.delete(request.id);
    return gathered;
  }

  drop(requestId: string): void {
    this.gathered.delete(requestId);
  }

  private wants(request: Request): boolean {
    return request.samplingParams.promptLogprobs !== undefined && request.outputTokenIds.length === 0;
  }
}

import type { Request } from "../core/request.js";
import { IncrementalDetokenizer } from "../model/tokenizer/incremental-detokenizer.js";
import type { Tokenizer } from "../model/tokenizer/tokenizer.js";
import type { PromptTokenLogprob } from "../runner/prompt-logprobs.js";
import type { SampledToken } from "../runner/sampler.js";
import { type FinishReason, finishReasonOf, type RequestMetrics } from "./stats.js";

/** What a caller receives for one completion after a step: deltas since the previous output. */
export interface CompletionDelta {
  /** The caller's request id (shared by the n completions of one prompt). */
  requestId: string;
  /** Which of the n completions. */
  index: number;
  /** New text. Text that could still become a stop string is held back until it cannot. */
  text: string;
  /** New token ids (the EOS or stop token that ended the completion included, as vLLM does). */
  tokenIds: number[];
  /** The sampled tokens' logprobs, when asked for. */
  logprobs: SampledToken[];
  /** The prompt's log-probs (from its second token on), in the first delta of a request that asked for them. */
  promptLogprobs?: PromptTokenLogprob[];
  finished: boolean;
  finishReason?: FinishReason;
  /** The stop string or stop token id that ended it. */
  stopReason?: string | number;
  metrics?: RequestMetrics;
}

/**
 * Per-request output state: incremental detokenization and stop strings (vLLM's OutputProcessor).
 * The stop string ends the text when `includeStopStrInOutput` says so and is left out otherwise; only then is
 * text held back, while it could be the start of one. Control tokens' text stays unless `skipSpecialTokens`.
 */
export class RequestOutputState {
  private readonly detokenizer: IncrementalDetokenizer;
  private text = "";
  /** Text emitted so far; never contains the start of a stop string that may still complete. */
  private emitted = 0;

  constructor(
    tokenizer: Tokenizer,
    readonly request: Request,
    readonly parentId: string,
    readonly index: number,
  ) {
    this.detokenizer = new IncrementalDetokenizer(tokenizer, request.promptTokenIds, {
      skipSpecial: request.samplingParams.skipSpecialTokens,
    });
  }

  /**
   * Takes the request's newest token (already appended by the scheduler). Returns the delta, and in
   * `stopString` the stop string found, when one ended the completion (the caller then finishes the request).
   */
  update(
    sample: SampledToken,
    promptLogprobs?: PromptTokenLogprob[],
  ): { delta: CompletionDelta; stopString?: string } {
    const r = this.request;
    const p = r.samplingParams;
    const token = sample.tokenId;
    const endedByToken =
      r.status === "FINISHED_STOPPED" &&
      (p.stopTokenIds.includes(token) || (!p.ignoreEos && r.eosTokenIds.includes(token)));
    // The EOS or stop token that ended the completion is not part of its text (vLLM's), unless asked for.
    if (!endedByToken || p.includeStopStrInOutput) this.text += this.detokenizer.push(token);
    let finished = r.status !== "RUNNING" && r.status !== "WAITING" && r.status !== "PREEMPTED";
    if (finished) this.text += this.detokenizer.flush();

    let stopString: string | undefined;
    let stopAt = -1;
    for (const s of p.stop) {
      // A stop string not found before ends after `emitted`, so it starts at most its length - 1 before it.
      const at = this.text.indexOf(s, Math.max(0, this.emitted - s.length + 1));
      if (at >= 0 && (stopAt < 0 || at < stopAt)) {
        stopAt = at;
        stopString = s;
      }
    }
    if (stopString !== undefined) {
      this.text = this.text.slice(0, p.includeStopStrInOutput ? stopAt + stopString.length : stopAt);
      finished = true;
    }
    // A stop string kept in the output needs no holding back: whatever precedes it is emitted anyway.
    const heldBack = finished || p.includeStopStrInOutput ? 0 : partialStopLength(this.text, p.stop);
    const end = this.text.length - heldBack;
    const delta: CompletionDelta = {
      requestId: this.parentId,
      index: this.index,
      text: this.text.slice(this.emitted, end),
      tokenIds: [token],
      logprobs: p.logprobs > 0 ? [sample] : [],
      finished,
    };
    if (promptLogprobs) delta.promptLogprobs = promptLogprobs;
    this.emitted = end;
    if (finished) {
      delta.finishReason = stopString !== undefined ? "stop" : finishReasonOf(r);
      delta.stopReason = stopString ?? (endedByToken && p.stopTokenIds.includes(token) ? token : undefined);
    }
    return { delta, stopString };
  }

  /** The final delta of a request ended from outside (abort); the engine adds its metrics. */
  aborted(): CompletionDelta {
    return {
      requestId: this.parentId,
      index: this.index,
      text: this.text.slice(this.emitted),
      tokenIds: [],
      logprobs: [],
      finished: true,
      finishReason: "abort",
    };
  }
}

/** Length of the longest end of `text` that is the start of a stop string (but not all of it): it may still become one. */
function partialStopLength(text: string, stops: readonly string[]): number {
  let longest = 0;
  for (const stop of stops) {
    for (let k = Math.min(stop.length - 1, text.length); k > longest; k--) {
      if (text.endsWith(stop.slice(0, k))) {
        longest = k;
        break;
      }
    }
  }
  return longest;
}

/** One completion assembled from its deltas. */
export interface CompletionOutput {
  index: number;
  text: string;
  tokenIds: number[];
  logprobs: SampledToken[];
  promptLogprobs?: PromptTokenLogprob[];
  finishReason: FinishReason;
  stopReason?: string | number;
  metrics?: RequestMetrics;
}

/** Reads a generate() stream to its end: its n completions in index order. `onDelta` sees every delta. */
export async function collectCompletions(
  stream: AsyncIterable<CompletionDelta>,
  onDelta?: (delta: CompletionDelta) => void,
): Promise<CompletionOutput[]> {
  const completions: CompletionOutput[] = [];
  for await (const delta of stream) {
    onDelta?.(delta);
    completions[delta.index] ??= {
      index: delta.index,
      text: "",
      tokenIds: [],
      logprobs: [],
      finishReason: "length",
    };
    const c = completions[delta.index];
    c.text += delta.text;
    c.tokenIds.push(...delta.tokenIds);
    c.logprobs.push(...delta.logprobs);
    if (delta.promptLogprobs) c.promptLogprobs = delta.promptLogprobs;
    if (delta.finished) {
      c.finishReason = delta.finishReason ?? "length";
      c.stopReason = delta.stopReason;
      c.metrics = delta.metrics;
    }
  }
  return completions;
}

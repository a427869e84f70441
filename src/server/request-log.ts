import type { FastifyReply, FastifyRequest } from "fastify";
import type { CompletionDelta } from "../engine/output-processor.js";
import type { FinishReason } from "../engine/stats.js";

/** Token counts, TTFT and finish reasons of one HTTP request's generations, for its log line and its `usage`. */
export class GenerationTally {
  completionTokens = 0;
  /** Seconds from arrival to the first token of the earliest completion (engine clock). */
  ttft?: number;
  /** Per choice (by its index in the response): how it ended; undefined while it runs. */
  readonly finishReasons: (FinishReason | undefined)[];

  constructor(
    readonly promptTokens: number,
    numChoices: number,
  ) {
    this.finishReasons = Array.from({ length: numChoices }, () => undefined);
  }

  /** Counts one delta of the choice numbered `firstChoice` + delta.index. */
  add(delta: CompletionDelta, firstChoice = 0): void {
    this.completionTokens += delta.tokenIds.length;
    const m = delta.metrics;
    if (m && m.numGenerationTokens > 0 && (this.ttft === undefined || m.ttft < this.ttft)) this.ttft = m.ttft;
    if (delta.finished) this.finishReasons[firstChoice + delta.index] = delta.finishReason ?? "length";
  }

  get usage() {
    return {
      prompt_tokens: this.promptTokens,
      completion_tokens: this.completionTokens,
      total_tokens: this.promptTokens + this.completionTokens,
    };
  }
}

const tallies = new WeakMap<FastifyRequest, GenerationTally>();

export function noteGeneration(request: FastifyRequest, tally: GenerationTally): void {
  tallies.set(request, tally);
}

/**
 * Logs the request's one line when its response closes. fastify's onResponse hook runs only for a response
 * that finished; "close" comes once for every response, also when the client went away or shutdown
 * destroyed its socket.
 */
export function logWhenClosed(request: FastifyRequest, reply: FastifyReply): void {
  reply.raw.once("close", () => logRequest(request, reply));
}

/** Client Closed Request (nginx's): the client went away before any response was sent. */
const clientClosed = 499;

/**
 * One line per request; probes (/health, /metrics) only at debug level. A response cut off before it
 * finished aborted its generations (generation.ts), so choices with no finish of their own ended "abort".
 */
function logRequest(request: FastifyRequest, reply: FastifyReply): void {
  const tally = tallies.get(request);
  const cutOff = !reply.raw.writableFinished;
  const reasons = tally?.finishReasons.map((reason) => reason ?? (cutOff ? "abort" : undefined));
  const line = {
    method: request.method,
    url: request.url,
    status: reply.raw.headersSent ? reply.statusCode : clientClosed,
    prompt_tokens: tally?.promptTokens,
    generated_tokens: tally?.completionTokens,
    finish_reason: reasons?.length === 1 ? reasons[0] : reasons,
    ttft_s: tally?.ttft === undefined ? undefined : round(tally.ttft),
    total_s: round(reply.elapsedTime / 1000),
  };
  const probe = request.routeOptions.url === "/health" || request.routeOptions.url === "/metrics";
  if (probe) request.log.debug(line, "request");
  else request.log.info(line, "request");
}

function round(seconds: number): number {
  return Math.round(seconds * 1e4) / 1e4;
}

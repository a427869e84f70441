import type { FastifyReply, FastifyRequest } from "fastify";
import type { CompletionDelta } from "../engine/output-processor.js";

/** Token counts and TTFT of one HTTP request's generations, for its log line and its `usage`. */
export class GenerationTally {
  completionTokens = 0;
  /** Seconds from arrival to the first token of the earliest completion (engine clock). */
  ttft?: number;

  constructor(readonly promptTokens: number) {}

  add(delta: CompletionDelta): void {
    this.completionTokens += delta.tokenIds.length;
    const m = delta.metrics;
    if (m && m.numGenerationTokens > 0 && (this.ttft === undefined || m.ttft < this.ttft)) this.ttft = m.ttft;
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

/** One line per request (fastify's onResponse hook); probes (/health, /metrics) only at debug level. */
export function logRequest(request: FastifyRequest, reply: FastifyReply): void {
  const tally = tallies.get(request);
  const line = {
    method: request.method,
    url: request.url,
    status: reply.statusCode,
    prompt_tokens: tally?.promptTokens,
    generated_tokens: tally?.completionTokens,
    ttft_s: tally?.ttft === undefined ? undefined : round(tally.ttft),
    total_s: round(reply.elapsedTime / 1000),
  };
  const probe = request.url === "/health" || request.url === "/metrics";
  if (probe) request.log.debug(line, "request");
  else request.log.info(line, "request");
}

function round(seconds: number): number {
  return Math.round(seconds * 1e4) / 1e4;
}

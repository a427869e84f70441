import { type SamplingParams, samplingParams, type ValidSamplingParams } from "../engine/api.js";
import type { ChatBody, CompletionBody } from "./schemas.js";

/**
 * The engine's validated sampling parameters from the fields completions and chat share: the one place a
 * request's parameters are checked (a SamplingParamError names the field). Absent fields take OpenAI's
 * defaults (temperature 1, top_p 1, n 1); `maxTokens` and `logprobs` differ per endpoint, so the caller
 * passes them, and `overrides` what the request's other features set (tools keep special tokens' text).
 */
export function samplingParamsFrom(
  body: CompletionBody | ChatBody,
  maxTokens: number,
  logprobs: number,
  overrides: Partial<SamplingParams> = {},
): ValidSamplingParams {
  const stop = body.stop ?? [];
  return samplingParams({
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    topK: body.top_k ?? undefined,
    minP: body.min_p ?? undefined,
    repetitionPenalty: body.repetition_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    seed: body.seed ?? undefined,
    logprobs,
    maxTokens,
    minTokens: body.min_tokens ?? undefined,
    ignoreEos: body.ignore_eos ?? undefined,
    stopTokenIds: body.stop_token_ids ?? undefined,
    stop: typeof stop === "string" ? [stop] : stop,
    n: body.n ?? undefined,
    ...overrides,
  });
}

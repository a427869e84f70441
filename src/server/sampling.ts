import { type SamplingParams, samplingParams, type ValidSamplingParams } from "../engine/api.js";
import { ApiError } from "./errors.js";
import type { ChatBody, CompletionBody } from "./schemas.js";

/**
 * The engine's validated sampling parameters from the fields completions and chat share: the one place a
 * request's parameters are checked (a SamplingParamError names the field). Absent fields take OpenAI's
 * defaults (temperature 1, top_p 1, n 1); `maxTokens` and `logprobs` differ per endpoint, so the caller
 * passes them, and in `overrides` what the request's other parts set: `badWords` (tokenized off the event
 * loop, see badWordIds), tools (which keep special tokens' text).
 */
export function samplingParamsFrom(
  body: CompletionBody | ChatBody,
  maxTokens: number,
  logprobs: number,
  overrides: Partial<SamplingParams> = {},
): ValidSamplingParams {
  if (body.stream && body.prompt_logprobs != null) {
    throw new ApiError(
      400,
      "prompt_logprobs is not available with stream: true (as in vLLM)",
      "prompt_logprobs",
    );
  }
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
    includeStopStrInOutput: body.include_stop_str_in_output ?? undefined,
    skipSpecialTokens: body.skip_special_tokens ?? undefined,
    logitBias: body.logit_bias
      ? new Map(Object.entries(body.logit_bias).map(([id, bias]) => [Number(id), bias]))
      : undefined,
    allowedTokenIds: body.allowed_token_ids ?? undefined,
    promptLogprobs: body.prompt_logprobs ?? undefined,
    ...overrides,
  });
}

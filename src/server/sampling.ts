import { defaultSamplingParams, type SamplingParams } from "../core/sampling-params.js";
import type { ChatBody, CompletionBody } from "./schemas.js";

/** The API's name of each SamplingParams field, for error messages' `param`. */
const apiNames: Record<keyof SamplingParams, string> = {
  temperature: "temperature",
  topP: "top_p",
  topK: "top_k",
  minP: "min_p",
  repetitionPenalty: "repetition_penalty",
  presencePenalty: "presence_penalty",
  frequencyPenalty: "frequency_penalty",
  seed: "seed",
  logprobs: "logprobs",
  maxTokens: "max_tokens",
  minTokens: "min_tokens",
  ignoreEos: "ignore_eos",
  stopTokenIds: "stop_token_ids",
  stop: "stop",
  n: "n",
};

export function apiParamName(field: keyof SamplingParams): string {
  return apiNames[field];
}

/**
 * The engine's SamplingParams from the fields completions and chat share. Absent fields take OpenAI's
 * defaults (temperature 1, top_p 1, n 1); `maxTokens` and `logprobs` differ per endpoint, so the caller
 * passes them.
 */
export function samplingParamsFrom(
  body: CompletionBody | ChatBody,
  maxTokens: number,
  logprobs: number,
): SamplingParams {
  const stop = body.stop ?? [];
  return {
    ...defaultSamplingParams,
    temperature: body.temperature ?? defaultSamplingParams.temperature,
    topP: body.top_p ?? defaultSamplingParams.topP,
    topK: body.top_k ?? defaultSamplingParams.topK,
    minP: body.min_p ?? defaultSamplingParams.minP,
    repetitionPenalty: body.repetition_penalty ?? defaultSamplingParams.repetitionPenalty,
    presencePenalty: body.presence_penalty ?? defaultSamplingParams.presencePenalty,
    frequencyPenalty: body.frequency_penalty ?? defaultSamplingParams.frequencyPenalty,
    seed: body.seed ?? undefined,
    logprobs,
    maxTokens,
    minTokens: body.min_tokens ?? 0,
    ignoreEos: body.ignore_eos ?? false,
    stopTokenIds: body.stop_token_ids ?? [],
    stop: typeof stop === "string" ? [stop] : stop,
    n: body.n ?? 1,
  };
}

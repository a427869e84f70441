import type { TokenGrammar } from "./grammar.js";

/** Per-request sampling parameters, with vLLM/OpenAI meanings. */
export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability mass is ≥ topP; 1 = off. */
  topP: number;
  /** Keep the K most likely tokens; 0 or -1 = off. */
  topK: number;
  /** Drop tokens whose probability is below minP × the top token's probability; 0 = off. */
  minP: number;
  /** CTRL-style: logits of tokens seen in prompt or output are divided (if > 0) or multiplied (if < 0) by it; 1 = off. */
  repetitionPenalty: number;
  /** Subtracted once from the logit of every token present in the output so far. */
  presencePenalty: number;
  /** Subtracted from a token's logit per occurrence in the output so far. */
  frequencyPenalty: number;
  /** Makes this request's sampling reproducible; undefined = nondeterministic. */
  seed?: number;
  /** Number of top log-probabilities to return per generated token (0 = none). */
  logprobs: number;
  maxTokens: number;
  /** Below this many generated tokens, EOS and stop tokens are masked out. */
  minTokens: number;
  /** Keep generating past EOS (for benchmarks). */
  ignoreEos: boolean;
  /** Token ids that end generation besides the model's EOS. */
  stopTokenIds: number[];
  /** Strings that end generation; the text up to (not including) the stop string is returned. */
  stop: string[];
  /** Completions to generate for the prompt, sharing its KV blocks. */
  n: number;
  /** Added to a token's logit before sampling (OpenAI's logit_bias): token id → bias in [-100, 100]. */
  logitBias: ReadonlyMap<number, number>;
  /** Only these tokens may be sampled (vLLM's allowed_token_ids); empty = all. */
  allowedTokenIds: readonly number[];
  /**
   * Token sequences that may not be generated (vLLM's bad_words, tokenized): the last token of a sequence
   * is banned wherever the output ends with the tokens before it.
   */
  badWords: readonly (readonly number[])[];
  /** Keep the stop string that ended a completion at the end of its text. */
  includeStopStrInOutput: boolean;
  /** Leave control tokens' text (e.g. "<|im_end|>") out of the output text; default true. */
  skipSpecialTokens: boolean;
  /** Logprobs of the prompt's tokens: undefined = none; k = each prompt token's own plus its top k. */
  promptLogprobs?: number;
  /** Structured output: only what this grammar accepts may be sampled. */
  grammar?: TokenGrammar;
}

/** What each field is called in the OpenAI/vLLM API: error messages and their `param` use these names. */
export const samplingParamApiNames: Record<keyof SamplingParams, string> = {
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
  logitBias: "logit_bias",
  allowedTokenIds: "allowed_token_ids",
  badWords: "bad_words",
  includeStopStrInOutput: "include_stop_str_in_output",
  skipSpecialTokens: "skip_special_tokens",
  promptLogprobs: "prompt_logprobs",
  grammar: "structured_outputs",
};

const defaultSamplingParams: Readonly<SamplingParams> = {
  temperature: 1,
  topP: 1,
  topK: 0,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  logprobs: 0,
  maxTokens: 16,
  minTokens: 0,
  ignoreEos: false,
  stopTokenIds: [],
  stop: [],
  n: 1,
  logitBias: new Map(),
  allowedTokenIds: [],
  badWords: [],
  includeStopStrInOutput: false,
  skipSpecialTokens: true,
};

/** An out-of-range sampling parameter; `apiName` is the field's name in the API (for an error's `param`). */
export class SamplingParamError extends RangeError {
  readonly apiName: string;

  constructor(
    readonly param: keyof SamplingParams,
    rule: string,
    value: number,
  ) {
    super(`${samplingParamApiNames[param]} ${rule}, got ${value}`);
    this.name = "SamplingParamError";
    this.apiName = samplingParamApiNames[param];
  }
}

/**
 * The type-level proof that parameters were validated (no field at run time). Only `samplingParams()` makes
 * one; a spread copy's type drops the protected member, so changed parameters must be validated again.
 */
class Validated {
  declare protected readonly validated: true;
}

/** Sampling parameters that passed validation: what the engine, the scheduler and the sampler take. */
export type ValidSamplingParams = Readonly<SamplingParams> & Validated;

/**
 * The defaults overridden by the fields `given` defines, validated: the one place parameter ranges are
 * checked (vLLM's ranges), at the edge where parameters enter. Throws a SamplingParamError naming the first
 * field out of range.
 */
export function samplingParams(given: Partial<SamplingParams> = {}): ValidSamplingParams {
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(samplingParamApiNames, key))
      throw new RangeError(`unknown sampling parameter "${key}"`);
  }
  const defined = Object.entries(given).filter(([, value]) => value !== undefined);
  const p: SamplingParams = { ...defaultSamplingParams, ...Object.fromEntries(defined) };
  // Written as !(inside) so that NaN fails every check.
  if (!(p.temperature >= 0 && Number.isFinite(p.temperature)))
    fail("temperature", "must be a finite number ≥ 0", p.temperature);
  if (!(p.topP > 0 && p.topP <= 1)) fail("topP", "must be in (0, 1]", p.topP);
  if (!(Number.isInteger(p.topK) && p.topK >= -1))
    fail("topK", "must be an integer ≥ -1 (0 or -1 = off)", p.topK);
  if (!(p.minP >= 0 && p.minP <= 1)) fail("minP", "must be in [0, 1]", p.minP);
  if (!(p.repetitionPenalty > 0 && Number.isFinite(p.repetitionPenalty)))
    fail("repetitionPenalty", "must be a finite number > 0", p.repetitionPenalty);
  if (!(p.presencePenalty >= -2 && p.presencePenalty <= 2))
    fail("presencePenalty", "must be in [-2, 2]", p.presencePenalty);
  if (!(p.frequencyPenalty >= -2 && p.frequencyPenalty <= 2))
    fail("frequencyPenalty", "must be in [-2, 2]", p.frequencyPenalty);
  if (!(Number.isInteger(p.maxTokens) && p.maxTokens >= 1))
    fail("maxTokens", "must be an integer ≥ 1", p.maxTokens);
  if (!(Number.isInteger(p.logprobs) && p.logprobs >= 0 && p.logprobs <= 20))
    fail("logprobs", "must be an integer in [0, 20]", p.logprobs);
  if (!(Number.isInteger(p.minTokens) && p.minTokens >= 0 && p.minTokens <= p.maxTokens))
    fail("minTokens", "must be an integer in [0, max_tokens]", p.minTokens);
  if (!(Number.isInteger(p.n) && p.n >= 1)) fail("n", "must be an integer ≥ 1", p.n);
  if (p.seed !== undefined && !Number.isSafeInteger(p.seed)) fail("seed", "must be an integer", p.seed);
  for (const bias of p.logitBias.values())
    if (!(bias >= -100 && bias <= 100)) fail("logitBias", "values must be in [-100, 100]", bias);
  if (
    p.promptLogprobs !== undefined &&
    !(Number.isInteger(p.promptLogprobs) && p.promptLogprobs >= 0 && p.promptLogprobs <= 20)
  )
    fail("promptLogprobs", "must be an integer in [0, 20]", p.promptLogprobs);
  return Object.assign(new Validated(), p);
}

function fail(param: keyof SamplingParams, rule: string, value: number): never {
  throw new SamplingParamError(param, rule, value);
}

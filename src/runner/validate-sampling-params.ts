import type { SamplingParams } from "../core/sampling-params.js";

/** An out-of-range sampling parameter. `param` is the SamplingParams field; the message uses the API name. */
export class SamplingParamError extends RangeError {
  constructor(
    readonly param: keyof SamplingParams,
    message: string,
  ) {
    super(message);
    this.name = "SamplingParamError";
  }
}

/** Throws a SamplingParamError naming the first parameter outside its range (vLLM's ranges). */
export function validateSamplingParams(p: SamplingParams): void {
  // Written as !(inside) so that NaN fails every check.
  if (!(p.temperature >= 0 && Number.isFinite(p.temperature)))
    fail("temperature", "temperature", "must be a finite number ≥ 0", p.temperature);
  if (!(p.topP > 0 && p.topP <= 1)) fail("topP", "top_p", "must be in (0, 1]", p.topP);
  if (!(Number.isInteger(p.topK) && p.topK >= -1))
    fail("topK", "top_k", "must be an integer ≥ -1 (0 or -1 = off)", p.topK);
  if (!(p.minP >= 0 && p.minP <= 1)) fail("minP", "min_p", "must be in [0, 1]", p.minP);
  if (!(p.repetitionPenalty > 0 && Number.isFinite(p.repetitionPenalty)))
    fail("repetitionPenalty", "repetition_penalty", "must be a finite number > 0", p.repetitionPenalty);
  if (!(p.presencePenalty >= -2 && p.presencePenalty <= 2))
    fail("presencePenalty", "presence_penalty", "must be in [-2, 2]", p.presencePenalty);
  if (!(p.frequencyPenalty >= -2 && p.frequencyPenalty <= 2))
    fail("frequencyPenalty", "frequency_penalty", "must be in [-2, 2]", p.frequencyPenalty);
  if (!(Number.isInteger(p.maxTokens) && p.maxTokens >= 1))
    fail("maxTokens", "max_tokens", "must be an integer ≥ 1", p.maxTokens);
  if (!(Number.isInteger(p.logprobs) && p.logprobs >= 0 && p.logprobs <= 20))
    fail("logprobs", "logprobs", "must be an integer in [0, 20]", p.logprobs);
  if (!(Number.isInteger(p.minTokens) && p.minTokens >= 0 && p.minTokens <= p.maxTokens))
    fail("minTokens", "min_tokens", "must be an integer in [0, max_tokens]", p.minTokens);
  if (!(Number.isInteger(p.n) && p.n >= 1)) fail("n", "n", "must be an integer ≥ 1", p.n);
  if (p.seed !== undefined && !Number.isSafeInteger(p.seed))
    fail("seed", "seed", "must be an integer", p.seed);
}

function fail(param: keyof SamplingParams, apiName: string, rule: string, value: number): never {
  throw new SamplingParamError(param, `${apiName} ${rule}, got ${value}`);
}

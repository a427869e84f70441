/**
 * What callers of the engine (the server, the CLI) use from the layers below it, so that the engine is their
 * only door: requests' sampling parameters, and the errors a request can be refused with.
 */
export {
  SamplingParamError,
  type SamplingParams,
  samplingParams,
  type ValidSamplingParams,
} from "../core/sampling-params.js";
export { AdmissionError } from "../core/scheduler.js";
export type { PromptTokenLogprob } from "../runner/prompt-logprobs.js";
export type { SampledToken, TokenLogprob } from "../runner/sampler.js";

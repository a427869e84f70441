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
}

export const defaultSamplingParams: SamplingParams = {
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
};

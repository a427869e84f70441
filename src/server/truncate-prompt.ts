import { ApiError } from "./errors.js";

/**
 * vLLM's truncate_prompt_tokens: keep only the prompt's last k tokens, after tokenization and before
 * admission; -1 means the model's max length. Absent: the prompt as it is.
 */
export function truncatePrompt(ids: number[], k: number | null | undefined, maxModelLen: number): number[] {
  if (k == null) return ids;
  if (k === 0 || k > maxModelLen) {
    throw new ApiError(
      400,
      `truncate_prompt_tokens must be -1 or in [1, ${maxModelLen}] (the model's max length), got ${k}`,
      "truncate_prompt_tokens",
    );
  }
  const keep = k === -1 ? maxModelLen : k;
  return ids.length > keep ? ids.slice(ids.length - keep) : ids;
}

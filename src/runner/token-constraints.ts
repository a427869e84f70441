import type { SamplingParams } from "../core/sampling-params.js";

/**
 * The request's own rules on which tokens may come next, applied to a logits row before the penalties, in
 * vLLM v1's order: allowed_token_ids (every other token masked out), bad_words (a word's last token masked
 * wherever the output so far ends with the rest of it), then logit_bias (added to the logit). Changes `row`
 * in place; the caller's raw logits, which log-probs are taken from, stay as they were.
 */
export function applyTokenConstraints(
  row: Float32Array,
  p: Readonly<SamplingParams>,
  outputIds: readonly number[],
): void {
  if (p.allowedTokenIds.length > 0) {
    const kept = p.allowedTokenIds.map((id) => row[id]);
    row.fill(Number.NEGATIVE_INFINITY);
    p.allowedTokenIds.forEach((id, i) => {
      row[id] = kept[i];
    });
  }
  for (const word of p.badWords) {
    if (endsWithPrefixOf(outputIds, word)) row[word[word.length - 1]] = Number.NEGATIVE_INFINITY;
  }
  for (const [id, bias] of p.logitBias) row[id] += bias;
}

/** Whether `ids` ends with all of `word` but its last token (always true for a one-token word). */
function endsWithPrefixOf(ids: readonly number[], word: readonly number[]): boolean {
  const prefix = word.length - 1;
  if (prefix > ids.length) return false;
  const start = ids.length - prefix;
  for (let i = 0; i < prefix; i++) if (ids[start + i] !== word[i]) return false;
  return true;
}

import type { Llama, Token } from "node-llama-cpp";

/**
 * llama.cpp (node-llama-cpp's prebuilt binary) as the oracle of next-token distributions. node-llama-cpp gives
 * no logits, only probabilities after its sampler chain: with a top-k sampler at temperature 1 they are the
 * softmax over the k most likely tokens (most likely first), so their logarithms are the logits of those tokens
 * less one constant; with the greedy sampler they cover the whole vocabulary, but handing 150k of them to JS
 * takes about half a second per position, so only a few positions ask for that.
 */
export interface LlamaCppDistributions {
  /** Per position: the k most likely next tokens, most likely first, and their log-probabilities among those k. */
  top: { ids: number[]; logprobs: number[] }[];
  /** At the positions asked for: log-probabilities of every token of the vocabulary. */
  full: Map<number, Float64Array>;
}

/**
 * Teacher-forces `ids` through llama.cpp in one batch on a fresh context: f32 K/V (vellum's default), no flash
 * attention (whose f16 rounding of Q vellum does not share), `threads` threads.
 */
export async function llamaCppDistributions(
  llama: Llama,
  path: string,
  ids: readonly number[],
  opts: { contextSize: number; k: number; fullAt: readonly number[]; threads: number },
): Promise<LlamaCppDistributions> {
  const model = await llama.loadModel({ modelPath: path });
  try {
    const context = await model.createContext({
      contextSize: opts.contextSize,
      threads: opts.threads,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    try {
      const topK = { temperature: 1, topK: opts.k, topP: 1, minP: 0, seed: 1 };
      const results = await context
        .getSequence()
        .controlledEvaluate(
          ids.map((id, i): [Token, { generateNext: object }] => [
            id as Token,
            {
              generateNext: opts.fullAt.includes(i)
                ? { probabilities: true }
                : { probabilities: true, options: topK },
            },
          ]),
        );
      const top: LlamaCppDistributions["top"] = [];
      const full = new Map<number, Float64Array>();
      results.forEach((r, i) => {
        const probabilities = r?.next.probabilities;
        if (!probabilities) throw new Error(`llama.cpp gave no probabilities at position ${i}`);
        const entries = [...probabilities.entries()];
        if (opts.fullAt.includes(i)) {
          const logprobs = new Float64Array(entries.length);
          for (const [id, p] of entries) logprobs[id] = Math.log(p);
          full.set(i, logprobs);
        }
        const head = entries.slice(0, opts.k);
        const mass = head.reduce((a, [, p]) => a + p, 0);
        top.push({ ids: head.map(([id]) => id), logprobs: head.map(([, p]) => Math.log(p / mass)) });
      });
      return { top, full };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

import { type Backend, type KvCacheDtype, untilKvCacheResident } from "../backend/backend.js";
import { minStepBudget, type StepRates } from "../engine/step-budget.js";
import { stepBatch } from "./step-batch.js";

const decodeRuns = 3;

/**
 * StepRates of a backend, measured before an engine takes it (the engine then reallocates the KV cache): one
 * untimed decode step (weights paged in, threads started), one timed prefill chunk of minStepBudget tokens (fewer
 * where the context is shorter), and the fastest of three decode steps after it. The chunk is the smallest budget
 * step-budget.ts can choose, and larger chunks cost less per token, so the budget it yields keeps its bound. Well
 * under a second on a 1B model.
 */
export async function measureStepRates(
  backend: Backend,
  o: { vocabSize: number; blockSize: number; dtype: KvCacheDtype; contextLength: number },
): Promise<StepRates> {
  const { vocabSize, blockSize, dtype } = o;
  const chunk = Math.max(1, Math.min(minStepBudget, o.contextLength - 1 - decodeRuns));
  const blocks = Math.ceil((1 + chunk + decodeRuns) / blockSize);
  backend.initKvCache({ numBlocks: blocks, blockSize, dtype });
  await untilKvCacheResident(backend);
  const logits = new Float32Array(vocabSize); // kept across steps, as the engine's runner keeps it
  const seconds = async (start: number, count: number) => {
    const batch = stepBatch([start], [count], blocks, blockSize, vocabSize);
    const t = performance.now();
    await backend.forward(batch, logits);
    return (performance.now() - t) / 1000;
  };
  await seconds(0, 1);
  const prefillTokenSeconds = (await seconds(1, chunk)) / chunk;
  let decodeStepSeconds = Number.POSITIVE_INFINITY;
  for (let i = 0; i < decodeRuns; i++)
    decodeStepSeconds = Math.min(decodeStepSeconds, await seconds(1 + chunk + i, 1));
  return { decodeStepSeconds, prefillTokenSeconds };
}

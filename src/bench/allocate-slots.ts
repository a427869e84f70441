/**
 * Cost of one KVCacheManager.allocateSlots call with 1,000 running requests: the scheduler calls it
 * once per running request per step, so it must stay far below a forward pass.
 *
 *   vellum bench allocate-slots
 *
 * Each request has a 100-token prompt, the first 64 tokens shared by all (a system prompt, so admission
 * takes prefix hits), then decodes 64 tokens; every 16th decode fills a block, which is hashed and cached.
 * The whole run is done twice and the second is reported, so JIT warm-up is not measured.
 */
import { performance } from "node:perf_hooks";
import { type ComputedBlocks, KVCacheManager } from "../core/kv-cache-manager.js";
import { Request } from "../core/request.js";
import { samplingParams } from "../core/sampling-params.js";

const NUM_REQUESTS = 1000;
const BLOCK_SIZE = 16;
const PROMPT_TOKENS = 100;
const SHARED_PREFIX_TOKENS = 64;
const DECODE_STEPS = 64;
const MAX_MODEL_LEN = 512;

interface Timings {
  admitMicros: number;
  decodeMicros: number;
  hitRate: number;
}

function run(): Timings {
  const manager = new KVCacheManager({
    numBlocks: 1 + NUM_REQUESTS * Math.ceil((PROMPT_TOKENS + DECODE_STEPS) / BLOCK_SIZE),
    maxModelLen: MAX_MODEL_LEN,
    blockSize: BLOCK_SIZE,
  });
  const mustAllocate = (r: Request, numNewTokens: number, computed?: ComputedBlocks) => {
    if (manager.allocateSlots(r, numNewTokens, computed) === null)
      throw new Error("bench: KV cache too small");
  };
  const requests = Array.from({ length: NUM_REQUESTS }, (_, i) => {
    const prompt = Array.from({ length: PROMPT_TOKENS }, (_, p) =>
      p < SHARED_PREFIX_TOKENS ? p : 1000 + i * 100 + p,
    );
    return new Request({
      id: `r${i}`,
      promptTokenIds: prompt,
      samplingParams: samplingParams(),
      arrivalTime: 0,
    });
  });

  let start = performance.now();
  for (const r of requests) {
    const computed = manager.getComputedBlocks(r);
    mustAllocate(r, PROMPT_TOKENS - computed.numComputedTokens, computed);
    r.numComputedTokens = PROMPT_TOKENS;
  }
  const admitMicros = ((performance.now() - start) * 1000) / NUM_REQUESTS;

  // The sampled tokens, known up front here: allocateSlots caches only the tokens scheduled so far anyway.
  for (const [i, r] of requests.entries()) {
    r.appendOutputTokenIds(Array.from({ length: DECODE_STEPS }, (_, t) => (i + t) % 500));
  }
  start = performance.now();
  for (let step = 0; step < DECODE_STEPS; step++) {
    for (const r of requests) {
      mustAllocate(r, 1);
      r.numComputedTokens++;
    }
  }
  const decodeMicros = ((performance.now() - start) * 1000) / (DECODE_STEPS * NUM_REQUESTS);
  const stats = manager.prefixCacheStats;
  return { admitMicros, decodeMicros, hitRate: stats.hits / stats.queries };
}

export async function runAllocateSlots(): Promise<void> {
  run();
  const t = run();
  console.log(
    `allocateSlots at ${NUM_REQUESTS.toLocaleString("en-US")} running requests (blocks of ${BLOCK_SIZE}): ` +
      `${t.decodeMicros.toFixed(2)} µs per decode call; admission (prefix lookup + ${PROMPT_TOKENS}-token prefill) ` +
      `${t.admitMicros.toFixed(1)} µs per request at prefix hit rate ${(100 * t.hitRate).toFixed(1)}%`,
  );
}

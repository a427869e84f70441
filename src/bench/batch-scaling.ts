/**
 * Batched decode on the native backend: tokens/s of decode-only steps at batch 1, 4, 16, 64, each sequence
 * with a 256-token context. The contexts' cache blocks are allocated but not prefilled (attention reads them
 * all the same; their values do not change the speed), so the benchmark measures decode steps only.
 * Usage: vellum bench batch-scaling --model FILE.gguf [--threads N] [--batches 1,4,16,64] [--out F]
 */
import { type Backend, untilKvCacheResident } from "../backend/backend.js";
import { stepBatch } from "../workload/step-batch.js";
import {
  loadBenchModel,
  median,
  type NativeBenchOptions,
  timed,
  writeModelResult,
} from "./native-bench-setup.js";

export interface BatchScalingOptions extends NativeBenchOptions {
  /** Batch sizes, in the order they run (the first is the speedups' base). */
  batches: number[];
  /** Context tokens of every sequence. */
  context: number;
}

/** Tokens per KV cache block of the native benchmarks. */
export const benchBlockSize = 16;

/** Decode steps of `batch` sequences, each with `context` tokens before its first step. */
export interface BatchDecode {
  batch: number;
  context: number;
  steps: number;
}

const blocksPerSequence = ({ context, steps }: BatchDecode) =>
  Math.ceil((context + steps + 1) / benchBlockSize);

/** KV cache blocks batchDecodeStepSeconds writes. */
export const batchDecodeKvBlocks = (d: BatchDecode) => d.batch * blocksPerSequence(d);

/**
 * Seconds of each of `steps` decode steps, after one untimed step that warms caches and scratch buffers. The
 * backend's KV cache must hold batchDecodeKvBlocks(d) blocks of benchBlockSize.
 */
export async function batchDecodeStepSeconds(
  backend: Backend,
  vocabSize: number,
  d: BatchDecode,
): Promise<number[]> {
  const { batch, context, steps } = d;
  const blocksPer = blocksPerSequence(d);
  const times: number[] = [];
  const logits = new Float32Array(batch * vocabSize); // kept across steps, as the engine's runner keeps it
  for (let s = 0; s <= steps; s++) {
    const positions = Array(batch).fill(context + s);
    const step = stepBatch(positions, Array(batch).fill(1), blocksPer, benchBlockSize, vocabSize);
    const t = await timed(() => backend.forward(step, logits));
    if (s > 0) times.push(t);
  }
  return times;
}

export async function runBatchScaling(opts: BatchScalingOptions) {
  const { batches, context } = opts;
  const { model, backend } = await loadBenchModel(opts);
  const rows: { batch: number; stepSeconds: number; tokensPerSecond: number; speedup: number }[] = [];
  console.log(`${opts.model}: ${backend.kernelPath}, ${opts.threads} threads, ${context}-token contexts`);
  console.log("batch | step ms | tokens/s | × batch 1");
  for (const B of batches) {
    // Fewer timed steps for big batches: each takes longer and the median settles sooner.
    const steps = B >= 64 ? 3 : B >= 16 ? 4 : 8;
    const decode = { batch: B, context, steps };
    const numBlocks = batchDecodeKvBlocks(decode);
    backend.initKvCache({ numBlocks, blockSize: benchBlockSize, dtype: opts.kvCacheDtype });
    await untilKvCacheResident(backend);
    const times = await batchDecodeStepSeconds(backend, model.config.vocabSize, decode);
    const step = median(times);
    const tps = B / step;
    const speedup = rows.length ? tps / rows[0].tokensPerSecond : 1;
    rows.push({ batch: B, stepSeconds: step, tokensPerSecond: tps, speedup });
    console.log(
      `${String(B).padStart(5)} | ${(step * 1000).toFixed(1).padStart(7)} | ${tps.toFixed(1).padStart(8)} | ${speedup.toFixed(2).padStart(9)}`,
    );
  }
  writeModelResult("batch-scaling", opts, opts.threads, {
    model: opts.model,
    threads: opts.threads,
    kernelPath: backend.kernelPath,
    context,
    rows,
  });
}

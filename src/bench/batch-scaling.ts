/**
 * Batched decode on the native backend: tokens/s of decode-only steps at batch 1, 4, 16, 64, each sequence
 * with a 256-token context. The contexts' cache blocks are allocated but not prefilled (attention reads them
 * all the same; their values do not change the speed), so the benchmark measures decode steps only.
 * Usage: vellum bench batch-scaling --model FILE.gguf [--threads N] [--batches 1,4,16,64] [--out F]
 */
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

export async function runBatchScaling(opts: BatchScalingOptions) {
  const { batches, context } = opts;
  const { model, backend } = loadBenchModel(opts);
  const blockSize = 16;
  const rows: { batch: number; stepSeconds: number; tokensPerSecond: number; speedup: number }[] = [];
  console.log(`${opts.model}: ${backend.kernelPath}, ${opts.threads} threads, ${context}-token contexts`);
  console.log("batch | step ms | tokens/s | × batch 1");
  for (const B of batches) {
    // Fewer timed steps for big batches: each takes longer and the median settles sooner.
    const steps = B >= 64 ? 3 : B >= 16 ? 4 : 8;
    const blocksPer = Math.ceil((context + steps + 1) / blockSize);
    backend.initKvCache({ numBlocks: B * blocksPer, blockSize, dtype: opts.kvCacheDtype });
    const times: number[] = [];
    for (let s = 0; s <= steps; s++) {
      const batch = stepBatch(
        Array(B).fill(context + s),
        Array(B).fill(1),
        blocksPer,
        blockSize,
        model.config.vocabSize,
      );
      const t = await timed(() => backend.forward(batch));
      if (s > 0) times.push(t); // the first step warms caches and scratch buffers
    }
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

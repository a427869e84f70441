/**
 * Single-stream latency on the native backend: prefill tokens/s for a 512-token prompt (one forward pass)
 * and decode tokens/s after it (one token per step), with decode's roofline fraction
 * = tokens/s × bytes read per token ÷ measured read bandwidth.
 * Usage: vellum bench latency --model FILE.gguf [--threads N] [--prompt 512] [--decode 32] [--out F]
 */
import { untilKvCacheResident } from "../backend/backend.js";
import { stepBatch } from "../workload/step-batch.js";
import {
  gb,
  loadBenchModel,
  median,
  type NativeBenchOptions,
  probe,
  timed,
  writeModelResult,
} from "./native-bench-setup.js";

export interface LatencyOptions extends NativeBenchOptions {
  /** Prompt tokens of the prefill. */
  prompt: number;
  /** Decode steps after it. */
  decode: number;
  runs: number;
}

export async function runLatency(opts: LatencyOptions) {
  const { prompt: promptLen, decode: decodeSteps, runs } = opts;
  const { model, backend, weightBytes, kvBytes } = await loadBenchModel(opts);
  const bw = probe(opts.threads).readBytesPerSecond;
  const blockSize = 16;
  const blocks = Math.ceil((promptLen + decodeSteps) / blockSize);
  backend.initKvCache({ numBlocks: blocks, blockSize, dtype: opts.kvCacheDtype });
  await untilKvCacheResident(backend);
  const vocab = model.config.vocabSize;
  const prefill: number[] = [];
  const decode: number[] = [];
  const logits = new Float32Array(vocab); // kept across steps, as the engine's runner keeps it
  for (let r = 0; r < runs; r++) {
    prefill.push(
      await timed(() => backend.forward(stepBatch([0], [promptLen], blocks, blockSize, vocab), logits)),
    );
    for (let s = 0; s < decodeSteps; s++)
      decode.push(
        await timed(() => backend.forward(stepBatch([promptLen + s], [1], blocks, blockSize, vocab), logits)),
      );
  }
  const prefillTps = promptLen / median(prefill);
  const decodeTps = 1 / median(decode);
  const bytesPerToken = weightBytes + kvBytes(promptLen + decodeSteps / 2);
  const roofline = (decodeTps * bytesPerToken) / bw;
  const result = {
    model: opts.model,
    threads: opts.threads,
    kernelPath: backend.kernelPath,
    readBandwidthGBs: bw / 1e9,
    bytesPerDecodeToken: bytesPerToken,
    promptTokens: promptLen,
    prefillTokensPerSecond: prefillTps,
    decodeTokensPerSecond: decodeTps,
    decodeRooflineTokensPerSecond: bw / bytesPerToken,
    decodeRooflineFraction: roofline,
    prefillSeconds: prefill,
    decodeSeconds: decode,
  };
  console.log(`${opts.model}: ${backend.kernelPath}, ${opts.threads} threads, bandwidth ${gb(bw)} GB/s`);
  console.log("prefill tok/s | decode tok/s | GB read/token | roofline tok/s | roofline fraction");
  console.log(
    `${prefillTps.toFixed(1).padStart(13)} | ${decodeTps.toFixed(2).padStart(12)} | ${gb(bytesPerToken).padStart(13)} | ${(bw / bytesPerToken).toFixed(2).padStart(14)} | ${roofline.toFixed(2).padStart(17)}`,
  );
  writeModelResult("latency", opts, opts.threads, result);
}

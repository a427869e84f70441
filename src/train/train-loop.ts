/**
 * A whole training run: corpus → tokenizer → token streams → AdamW steps (with checkpoints) → evaluation →
 * GGUF. Deterministic for a given config: the tokenizer trainer, the initialization and every batch are seeded.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import cliProgress from "cli-progress";
import { type ModelConfig, plainConfig } from "../model/config.js";
import { writeGgufModel } from "../model/formats/gguf-model.js";
import type { LoadedModel } from "../model/model.js";
import { createTokenizer } from "../model/tokenizer/create.js";
import { encodeBooks, evaluationBatches, type TokenStream } from "./batches.js";
import { trainBpeVocab } from "./bpe-trainer.js";
import { nativeCompute } from "./compute.js";
import { readBibleCorpus, splitBooks } from "./corpus.js";
import { trainedModel } from "./export-gguf.js";
import type { LlamaGraph } from "./llama-graph.js";
import { countParams } from "./params.js";
import type { TrainConfig } from "./train-config.js";
import { Trainer } from "./trainer.js";

/** Loss over a whole token stream. */
export interface Evaluation {
  tokens: number;
  bytes: number;
  natsPerToken: number;
  /** Total nats / ln 2 / total UTF-8 bytes: comparable across tokenizers. */
  bitsPerByte: number;
}

export interface TrainSummary {
  parameters: number;
  steps: number;
  /** The step this process started from (0, or where a checkpoint left off); timings cover only the steps it ran. */
  startStep: number;
  trainingTokensPerSecond: number;
  trainingSeconds: number;
  train: Evaluation;
  validation: Evaluation;
  output: string;
}

/** The ModelConfig a training config describes (GGUF llama: interleaved RoPE, untied classifier). */
export function modelConfigOf(cfg: TrainConfig, vocabSize: number): ModelConfig {
  const m = cfg.model;
  return plainConfig({
    dim: m.dim,
    hiddenDim: m.hiddenDim,
    nLayers: m.nLayers,
    nHeads: m.nHeads,
    nKvHeads: m.nKvHeads,
    headDim: m.dim / m.nHeads,
    vocabSize,
    maxSeqLen: m.seqLen,
    normEps: m.normEps,
    ropeTheta: m.ropeTheta,
    ropeStyle: "interleaved",
    tiedEmbeddings: false,
    attentionBias: false,
  });
}

/** Reads the corpus, learns the tokenizer on the training books and encodes both splits. */
export function prepareData(cfg: TrainConfig, log: (line: string) => void) {
  const books = readBibleCorpus(cfg.corpus.command);
  const { train, validation } = splitBooks(books, cfg.corpus.validationFraction);
  log(`corpus: ${books.length} books; validation: ${validation.map((b) => b.name).join(", ")}`);
  const vocab = trainBpeVocab(
    train.flatMap((b) => b.verses.map((v) => ` ${v}`)),
    cfg.tokenizer.vocabSize,
  );
  const tokenizer = createTokenizer(vocab, `${cfg.name} tokenizer`);
  const trainStream = encodeBooks(tokenizer, train);
  const validationStream = encodeBooks(tokenizer, validation);
  // Training loss is measured on as many verses as validation holds, from the start of the training split.
  const numValidationVerses = validation.reduce((n, b) => n + b.verses.length, 0);
  const trainSample = [
    { name: "training sample", verses: train.flatMap((b) => b.verses).slice(0, numValidationVerses) },
  ];
  const trainSampleStream = encodeBooks(tokenizer, trainSample);
  log(
    `tokens: ${trainStream.tokens.length} train, ${validationStream.tokens.length} validation (vocabulary ${vocab.tokens.length})`,
  );
  return { vocab, tokenizer, trainStream, validationStream, trainSampleStream };
}

/** Mean loss over every token of `stream` (forward passes only). */
export function evaluate(graph: LlamaGraph, stream: TokenStream, bosId: number): Evaluation {
  let nats = 0;
  let tokens = 0;
  for (const batch of evaluationBatches(stream, graph.batchSize, graph.seqLen, bosId)) {
    const r = graph.forward(batch.inputs, batch.targets);
    nats += r.totalNats;
    tokens += r.count;
  }
  return {
    tokens,
    bytes: stream.bytes,
    natsPerToken: nats / tokens,
    bitsPerByte: nats / Math.LN2 / stream.bytes,
  };
}

export async function runTraining(
  cfg: TrainConfig,
  opts: { resume: boolean; log: (line: string) => void },
): Promise<{ summary: TrainSummary; model: LoadedModel }> {
  const { log } = opts;
  const { vocab, trainStream, validationStream, trainSampleStream } = prepareData(cfg, log);
  const config = modelConfigOf(cfg, vocab.tokens.length);
  const bosId = vocab.bosId as number;
  const o = cfg.optimizer;
  const trainer = new Trainer(config, o, cfg.seed, trainStream, bosId, nativeCompute(cfg.threads));
  const parameters = countParams(trainer.params);
  const T = cfg.model.seqLen;
  log(
    `model: ${parameters} parameters; ${o.steps} steps of ${o.batchSize} × ${T} tokens on ${cfg.threads} thread(s)`,
  );

  mkdirSync(cfg.checkpointDir, { recursive: true });
  const checkpointPath = join(cfg.checkpointDir, "checkpoint.bin");
  if (opts.resume && trainer.load(checkpointPath))
    log(`resumed from ${checkpointPath} at step ${trainer.step}`);

  const bar = new cliProgress.SingleBar(
    {
      format: "{bar} step {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}",
      noTTYOutput: true,
      notTTYSchedule: 30_000,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const firstStep = trainer.step;
  bar.start(o.steps, firstStep, { loss: "-", tps: "-" });
  const started = performance.now();
  let smoothLoss = Number.NaN;
  while (trainer.step < o.steps) {
    const loss = trainer.trainStep();
    smoothLoss = Number.isNaN(smoothLoss) ? loss : 0.95 * smoothLoss + 0.05 * loss;
    const tps = ((trainer.step - firstStep) * o.batchSize * T) / ((performance.now() - started) / 1000);
    bar.update(trainer.step, { loss: smoothLoss.toFixed(3), tps: tps.toFixed(0) });
    if (trainer.step % cfg.checkpointEvery === 0 || trainer.step === o.steps) trainer.save(checkpointPath);
    await new Promise((resolve) => setImmediate(resolve)); // lets the progress bar draw
  }
  bar.stop();
  const trainingSeconds = (performance.now() - started) / 1000;

  const validation = evaluate(trainer.graph, validationStream, bosId);
  const train = evaluate(trainer.graph, trainSampleStream, bosId);
  const model = trainedModel(config, trainer.params, vocab, cfg.name, cfg.dtype);
  mkdirSync(dirname(cfg.output), { recursive: true });
  writeGgufModel(model, cfg.output, { dtype: cfg.dtype });
  const summary: TrainSummary = {
    parameters,
    steps: o.steps,
    startStep: firstStep,
    trainingTokensPerSecond:
      firstStep < o.steps ? ((o.steps - firstStep) * o.batchSize * T) / trainingSeconds : 0,
    trainingSeconds,
    train,
    validation,
    output: cfg.output,
  };
  return { summary, model };
}

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { type ModelConfig, plainConfig } from "../../src/model/config.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import { encodeBooks, evaluationBatches, trainingBatch } from "../../src/train/batches.js";
import { trainBpeVocab } from "../../src/train/bpe-trainer.js";
import { nativeCompute } from "../../src/train/compute.js";
import type { Book } from "../../src/train/corpus.js";
import type { TrainConfig } from "../../src/train/train-config.js";
import { Trainer } from "../../src/train/trainer.js";

// A tiny inline corpus (Genesis 1:1-8) and a tiny model: enough to see learning in a few dozen fast steps.
const books: Book[] = [
  {
    name: "Genesis",
    verses: [
      "In the beginning God created the heaven and the earth.",
      "And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.",
      "And God said, Let there be light: and there was light.",
      "And God saw the light, that it was good: and God divided the light from the darkness.",
      "And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day.",
      "And God said, Let there be a firmament in the midst of the waters, and let it divide the waters from the waters.",
      "And God made the firmament, and divided the waters which were under the firmament from the waters which were above the firmament: and it was so.",
      "And God called the firmament Heaven. And the evening and the morning were the second day.",
    ],
  },
];
const vocab = trainBpeVocab(
  books[0].verses.map((v) => ` ${v}`),
  320,
);
const tokenizer = createTokenizer(vocab);
const stream = encodeBooks(tokenizer, books);
const T = 16;
const config: ModelConfig = plainConfig({
  dim: 32,
  hiddenDim: 64,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 8,
  vocabSize: vocab.tokens.length,
  maxSeqLen: T,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeStyle: "interleaved",
  tiedEmbeddings: false,
  attentionBias: false,
});
const optimizer: TrainConfig["optimizer"] = {
  steps: 30,
  batchSize: 8,
  maxLr: 0.01,
  minLr: 0.001,
  warmupSteps: 5,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  gradClip: 1,
};
const bos = vocab.bosId as number;
const newTrainer = () => new Trainer(config, optimizer, 5, stream, bos, nativeCompute(1));

const dir = mkdtempSync(join(tmpdir(), "vellum-train-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("training lowers the loss on a tiny corpus by more than 3 nats/token in 30 steps", () => {
  const trainer = newTrainer();
  const losses = Array.from({ length: optimizer.steps }, () => trainer.trainStep());
  const first = losses[0];
  const last = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  // A fresh model predicts about uniformly: ln(vocab) nats.
  expect(first).toBeGreaterThan(Math.log(config.vocabSize) - 0.3);
  expect(first - last, `first ${first.toFixed(3)}, last 5 mean ${last.toFixed(3)}`).toBeGreaterThan(3);
});

test("a run resumed from a checkpoint takes exactly the steps an uninterrupted run takes", () => {
  const straight = newTrainer();
  for (let i = 0; i < 6; i++) straight.trainStep();

  const first = newTrainer();
  for (let i = 0; i < 3; i++) first.trainStep();
  const path = join(dir, "ckpt.bin");
  first.save(path);
  const resumed = newTrainer();
  expect(resumed.load(path)).toBe(true);
  expect(resumed.step).toBe(3);
  for (let i = 0; i < 3; i++) resumed.trainStep();

  for (const [name, p] of straight.params) expect(resumed.params.get(name)?.value, name).toEqual(p.value);
  expect(newTrainer().load(join(dir, "missing.bin"))).toBe(false);
});

test("training windows start at verses after a BOS; evaluation covers every token exactly once", () => {
  const a = trainingBatch(stream, 4, T, bos, 1, 7);
  expect(trainingBatch(stream, 4, T, bos, 1, 7)).toEqual(a); // seeded by (seed, step)
  expect(trainingBatch(stream, 4, T, bos, 1, 8)).not.toEqual(a);
  const starts = new Set(stream.verseStarts);
  for (let b = 0; b < 4; b++) {
    expect(a.inputs[b * T]).toBe(bos);
    // Row t predicts the token that row t + 1 reads: the window is one contiguous stretch of the stream.
    for (let t = 0; t + 1 < T; t++) expect(a.inputs[b * T + t + 1]).toBe(a.targets[b * T + t]);
    const at = stream.tokens.findIndex(
      (_, i) =>
        starts.has(i) &&
        stream.tokens[i] === a.targets[b * T] &&
        stream.tokens[i + 1] === a.targets[b * T + 1],
    );
    expect(at).toBeGreaterThanOrEqual(0);
  }

  const seen: number[] = [];
  for (const batch of evaluationBatches(stream, 3, T, bos)) {
    for (let i = 0; i < batch.targets.length; i++) if (batch.targets[i] >= 0) seen.push(batch.targets[i]);
  }
  expect(seen).toEqual([...stream.tokens]);
});

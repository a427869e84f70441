import { readFileSync } from "node:fs";
import { fileErrorText, InputError, showFileValue } from "../model/errors.js";

/** A training run as data: `vellum train --config FILE` reads one of these (JSON). Paths are relative to the working directory. */
export interface TrainConfig {
  name: string;
  seed: number;
  corpus: {
    /** The command that prints the corpus, e.g. ["bible", "-l100000", "gen1:1-rev22:21"]. */
    command: string[];
    /** Share of whole books (the last ones) held out for validation. */
    validationFraction: number;
  };
  tokenizer: { vocabSize: number };
  model: {
    dim: number;
    hiddenDim: number;
    nLayers: number;
    nHeads: number;
    nKvHeads: number;
    /** Training window and the model's context length. */
    seqLen: number;
    normEps: number;
    ropeTheta: number;
  };
  optimizer: {
    steps: number;
    batchSize: number;
    maxLr: number;
    minLr: number;
    warmupSteps: number;
    weightDecay: number;
    beta1: number;
    beta2: number;
    eps: number;
    gradClip: number;
  };
  /** Threads for the native matrix products. */
  threads: number;
  checkpointEvery: number;
  checkpointDir: string;
  /** Where the GGUF goes, and the type of its matrices (f32 or f16). */
  output: string;
  dtype: "f32" | "f16";
}

/** Reads and checks a training config; every problem is an InputError naming the file and the key. */
export function readTrainConfig(path: string): TrainConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new InputError(`${path}: cannot read the training config: ${fileErrorText(err)}`);
  }
  const fail = (key: string, problem: string): never => {
    throw new InputError(`${path}: "${key}" ${problem}`);
  };
  const get = (key: string): unknown => {
    let v: unknown = raw;
    for (const part of key.split("."))
      v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
    if (v === undefined) fail(key, "is missing");
    return v;
  };
  const num = (key: string, min: number, integer = false) => {
    const v = get(key);
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      fail(key, `must be ${integer ? "an integer" : "a number"} ≥ ${min} (got ${showFileValue(v)})`);
    }
    return v as number;
  };
  const int = (key: string, min = 1) => num(key, min, true);
  const str = (key: string) => {
    const v = get(key);
    if (typeof v !== "string" || v === "") fail(key, "must be a non-empty string");
    return v as string;
  };
  const command = get("corpus.command");
  if (!Array.isArray(command) || command.length === 0 || !command.every((s) => typeof s === "string")) {
    fail("corpus.command", "must be a non-empty array of strings");
  }
  const dtype = str("dtype");
  if (dtype !== "f32" && dtype !== "f16") fail("dtype", `must be "f32" or "f16" (got "${dtype}")`);
  const config: TrainConfig = {
    name: str("name"),
    seed: int("seed", 0),
    corpus: { command: command as string[], validationFraction: num("corpus.validationFraction", 0) },
    tokenizer: { vocabSize: int("tokenizer.vocabSize", 260) },
    model: {
      dim: int("model.dim"),
      hiddenDim: int("model.hiddenDim"),
      nLayers: int("model.nLayers"),
      nHeads: int("model.nHeads"),
      nKvHeads: int("model.nKvHeads"),
      seqLen: int("model.seqLen", 2),
      normEps: num("model.normEps", 0),
      ropeTheta: num("model.ropeTheta", 1),
    },
    optimizer: {
      steps: int("optimizer.steps"),
      batchSize: int("optimizer.batchSize"),
      maxLr: num("optimizer.maxLr", 0),
      minLr: num("optimizer.minLr", 0),
      warmupSteps: int("optimizer.warmupSteps", 0),
      weightDecay: num("optimizer.weightDecay", 0),
      beta1: num("optimizer.beta1", 0),
      beta2: num("optimizer.beta2", 0),
      eps: num("optimizer.eps", 0),
      gradClip: num("optimizer.gradClip", 0),
    },
    threads: int("threads"),
    checkpointEvery: int("checkpointEvery"),
    checkpointDir: str("checkpointDir"),
    output: str("output"),
    dtype: dtype as "f32" | "f16",
  };
  const m = config.model;
  if (m.dim % m.nHeads !== 0) fail("model.nHeads", `(${m.nHeads}) must divide model.dim (${m.dim})`);
  if (m.nHeads % m.nKvHeads !== 0)
    fail("model.nKvHeads", `(${m.nKvHeads}) must divide model.nHeads (${m.nHeads})`);
  if ((m.dim / m.nHeads) % 2 !== 0)
    fail("model.nHeads", "must leave an even head width (RoPE rotates pairs)");
  if (config.corpus.validationFraction >= 1) fail("corpus.validationFraction", "must be below 1");
  return config;
}

/**
 * What structured outputs cost: decode throughput of N concurrent streams with a JSON schema on every request
 * against the same streams unconstrained (same prompts, seeds and lengths: the schema asks for more items than
 * the run has tokens, so no constrained stream ends early, and both runs ignore EOS), and the grammar's time
 * per token at a 32k and a 128k vocabulary (synthetic SentencePiece vocabularies of those sizes): the grammar
 * thread's mask after each accepted token, and applying the mask to a logits row on the event loop.
 * Usage: vellum bench structured --model FILE.gguf [--threads N] [--streams 16] [--max-tokens 64] [--runs 3]
 */
import { LLM } from "../engine/llm.js";
import { StructuredOutputs } from "../engine/structured-output/structured-outputs.js";
import type { StructuredOutputSpec } from "../model/structured-output-spec.js";
import { syntheticVocab } from "../model/synth/synth-vocab.js";
import { createTokenizer } from "../model/tokenizer/create.js";
import { applyTokenMask } from "../runner/grammar-masks.js";
import { Rng } from "../util/rng.js";
import { loadBenchModel, median, type NativeBenchOptions, writeModelResult } from "./native-bench-setup.js";

export interface StructuredBenchOptions extends NativeBenchOptions {
  streams: number;
  maxTokens: number;
  runs: number;
}

/** A schema of the kind applications send: a list of records with typed fields, long enough never to end. */
const schema = {
  type: "object",
  properties: {
    people: {
      type: "array",
      minItems: 1000,
      items: {
        type: "object",
        properties: {
          name: { type: "string", maxLength: 24 },
          age: { type: "integer", minimum: 0, maximum: 130 },
          tribe: { enum: ["Judah", "Levi", "Benjamin", "Dan"] },
          alive: { type: "boolean" },
        },
        required: ["name", "age", "tribe", "alive"],
      },
    },
  },
  required: ["people"],
};
const spec: StructuredOutputSpec = { type: "json_schema", schema };

const vocabSizes = [32000, 128256];
/** Tokens walked through the grammar per vocabulary size. */
const maskSteps = 300;

export async function runStructured(opts: StructuredBenchOptions) {
  const throughput = await measureThroughput(opts);
  const masks = [];
  for (const size of vocabSizes) masks.push(await measureMask(size));
  console.log("vocabulary | first compile ms | compile ms | mask µs/token (median, mean) | apply µs/token");
  for (const m of masks) {
    console.log(
      `${String(m.vocabSize).padStart(10)} | ${m.firstCompileMs.toFixed(0).padStart(16)} | ${m.compileMs.toFixed(0).padStart(10)} | ` +
        `${m.maskMedianUs.toFixed(0).padStart(6)}, ${m.maskMeanUs.toFixed(0).padStart(6)} | ${m.applyUs.toFixed(0).padStart(6)}`,
    );
  }
  writeModelResult("structured", opts, opts.threads, { ...throughput, masks });
}

async function measureThroughput(opts: StructuredBenchOptions) {
  const { model, backend } = await loadBenchModel(opts);
  const llm = await LLM.fromModel(model, {
    backend,
    kvCacheDtype: opts.kvCacheDtype,
    maxNumSeqs: opts.streams,
  });
  const grammar = await llm.engine.structuredOutputs.compile(spec);
  const prompts = Array.from({ length: opts.streams }, (_, i) => `List the people of stream ${i} as JSON.`);
  const run = async (constrained: boolean) => {
    const params = {
      temperature: 1,
      seed: 1,
      maxTokens: opts.maxTokens,
      ignoreEos: true,
      ...(constrained ? { grammar } : {}),
    };
    const start = performance.now();
    const outputs = await llm.generate(prompts, params);
    const seconds = (performance.now() - start) / 1000;
    const lengths = outputs.map((o) => o.outputs[0].tokenIds.length);
    if (lengths.some((n) => n !== opts.maxTokens))
      throw new Error(`a stream ended early: ${lengths.join(", ")}`);
    return (opts.streams * opts.maxTokens) / seconds;
  };
  await run(false);
  await run(true);
  const plain: number[] = [];
  const constrained: number[] = [];
  for (let r = 0; r < opts.runs; r++) {
    plain.push(await run(false));
    constrained.push(await run(true));
  }
  await llm.engine.structuredOutputs.close();
  const result = {
    streams: opts.streams,
    maxTokens: opts.maxTokens,
    kernelPath: backend.kernelPath,
    unconstrainedTokensPerSecond: median(plain),
    constrainedTokensPerSecond: median(constrained),
    ratio: median(constrained) / median(plain),
  };
  console.log(
    `${opts.model}: ${backend.kernelPath}, ${opts.threads} threads, ${opts.streams} streams × ${opts.maxTokens} tokens, median of ${opts.runs}`,
  );
  console.log(
    `unconstrained ${result.unconstrainedTokensPerSecond.toFixed(1)} tokens/s, JSON schema ${result.constrainedTokensPerSecond.toFixed(1)} tokens/s: ${result.ratio.toFixed(3)}×`,
  );
  return result;
}

/** Compile times, and the grammar's time per token on a random walk through the schema. */
async function measureMask(vocabSize: number) {
  const tokenizer = createTokenizer(syntheticVocab(vocabSize), `synthetic ${vocabSize}`);
  const outputs = new StructuredOutputs(tokenizer, vocabSize);
  let start = performance.now();
  const grammar = await outputs.compile(spec);
  const firstCompileMs = performance.now() - start;
  start = performance.now();
  await outputs.compile({
    type: "json_schema",
    schema: { ...schema, title: "another key, the same grammar" },
  });
  const compileMs = performance.now() - start;

  const matcher = grammar.createMatcher();
  const mask = new Int32Array(Math.ceil(vocabSize / 32));
  const row = new Float32Array(vocabSize);
  const rng = new Rng(7);
  const maskTimes: number[] = [];
  let applyTotal = 0;
  await matcher.ready();
  for (let step = 0; step < maskSteps; step++) {
    matcher.fillNextTokenBitmask(mask);
    const t = performance.now();
    applyTokenMask(row.fill(0), mask);
    applyTotal += performance.now() - t;
    const allowed: number[] = [];
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      if ((mask[id >> 5] >>> (id & 31)) & 1 && !tokenizer.stopIds.includes(id)) allowed.push(id);
    }
    const tokenId = allowed[Math.floor(rng.nextFloat() * allowed.length)];
    const before = performance.now();
    matcher.acceptToken(tokenId);
    await matcher.ready();
    maskTimes.push(performance.now() - before);
  }
  matcher.dispose();
  await outputs.close();
  const mean = maskTimes.reduce((a, b) => a + b, 0) / maskTimes.length;
  return {
    vocabSize,
    firstCompileMs,
    compileMs,
    maskMedianUs: median(maskTimes) * 1000,
    maskMeanUs: mean * 1000,
    applyUs: (applyTotal / maskSteps) * 1000,
  };
}

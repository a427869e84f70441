import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { Backend } from "../../src/backend/backend.js";
import { type KernelPath, loadNativeAddon, type NativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend, sampleParams } from "../../src/backend/native/native-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { type SamplingParams, samplingParams } from "../../src/core/sampling-params.js";
import { LLM } from "../../src/engine/llm.js";
import { loadModel } from "../../src/model/load.js";
import { bestIds, logSumExp, pickToken } from "../../src/runner/sampler.js";
import { xorshift } from "../helpers.js";

const loaded = loadNativeAddon();
if (loaded instanceof Error) console.warn(`[skip] native sampling: ${loaded.message}`);
const addon = loaded instanceof Error ? undefined : loaded;
const describeNative = (name: string, fn: (a: NativeAddon) => void) =>
  describe.skipIf(!addon)(name, () => {
    if (addon) fn(addon);
  });

/** Shapes of logits rows: spread, many ties, partly masked, one peak over noise, near-ties far below 1 ulp of exp. */
const rowStyles = ["spread", "ties", "masked", "peaked", "tiny"] as const;
type RowStyle = (typeof rowStyles)[number];

function makeRow(vocab: number, style: RowStyle, seed: number): Float32Array {
  const next = xorshift(seed);
  const row = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    const x = next();
    if (style === "ties") row[i] = Math.floor(x * 7) - 3;
    else if (style === "tiny") row[i] = 1 + Math.floor(x * 16) * 2 ** -23;
    else if (style === "peaked") row[i] = x * 4 + (next() < 0.01 ? 15 : 0);
    else row[i] = (x * 2 - 1) * 12;
    if (style === "masked" && next() < 0.6) row[i] = Number.NEGATIVE_INFINITY;
  }
  return row;
}

interface Case {
  /** What the draw reads (the raw row after a few masked tokens and biases, as a request's rules leave it). */
  row: Float32Array;
  raw: Float32Array;
  params: SamplingParams;
  u: number;
}

const caseArb = (vocab: fc.Arbitrary<number>) =>
  fc
    .record({
      vocab,
      style: fc.constantFrom(...rowStyles),
      seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      temperature: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0.01, max: 4, noNaN: true })),
      topK: fc.oneof(fc.constant(0), fc.constant(-1), fc.constant(1), fc.integer({ min: 1, max: 260 })),
      topP: fc.oneof(fc.constant(1), fc.double({ min: 0.001, max: 1, noNaN: true })),
      minP: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
      u: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      logprobs: fc.constantFrom(0, 0, 1, 5, 20),
      rules: fc.boolean(),
    })
    .map(({ vocab, style, seed, u, rules, ...p }): Case => {
      const raw = makeRow(vocab, style, seed);
      const row = raw.slice();
      if (rules)
        for (let i = seed % 7; i < vocab; i += 7) row[i] = i % 2 ? Number.NEGATIVE_INFINITY : row[i] + 2;
      return { row, raw, params: samplingParams(p), u };
    });

const hasFinite = (row: Float32Array) => row.some((x) => x > Number.NEGATIVE_INFINITY);

/**
 * Samples the cases in one native call on `kernels` and checks each against the JS reference: the same token,
 * or (counted in `boundary`) a token the reference picks for a u within 1e-9 relative, where f64 sums in
 * another order may legitimately fall on the other side; log-probabilities as the reference's.
 */
function checkAgainstReference(
  a: NativeAddon,
  kernels: KernelPath,
  cases: Case[],
  boundary: { count: number },
) {
  const vocab = cases[0].row.length;
  const rows = cases.map((c) => ({ ...c.params, logits: c.row, rawLogits: c.raw, u: c.u }));
  const got = a.kernelSample(
    kernels,
    cases.map((c) => c.row),
    cases.map((c) => c.raw),
    sampleParams(rows),
    vocab,
    2,
  );
  let top = 0;
  cases.forEach((c, i) => {
    const p = c.params;
    const pick = (u: number) => pickToken(c.row.slice(), p, u);
    if (p.temperature > 0 && !hasFinite(c.row)) {
      expect(() => pick(c.u)).toThrow(/no finite value/);
      expect(got.tokenIds[i]).toBe(-1);
    } else if (got.tokenIds[i] !== pick(c.u)) {
      const near = [c.u * (1 - 1e-9), Math.min(c.u * (1 + 1e-9), 1 - 2 ** -53)];
      expect(near.map(pick), `row ${i}: ${JSON.stringify({ ...p, u: c.u })}`).toContain(got.tokenIds[i]);
      boundary.count++;
    }
    const count = Math.min(p.logprobs, vocab);
    if (count > 0 && hasFinite(c.raw)) {
      const reference = logSumExp(c.raw);
      expect(Math.abs(got.logNormalizers[i] - reference)).toBeLessThanOrEqual(
        1e-12 * Math.max(1, Math.abs(reference)),
      );
      const ids = Array.from(got.topIds.subarray(top, top + count));
      expect(ids).toEqual(bestIds(c.raw, count));
    }
    top += count;
  });
}

describeNative("native batch sampler against the JS reference sampler", (a) => {
  for (const kernels of a.kernelPaths()) {
    test(`${kernels}: the reference's token for the same u, on small odd vocabularies (1..200)`, () => {
      const boundary = { count: 0 };
      let rows = 0;
      fc.assert(
        fc.property(
          fc
            .integer({ min: 1, max: 200 })
            .chain((vocab) => fc.array(caseArb(fc.constant(vocab)), { minLength: 1, maxLength: 6 })),
          (cases) => {
            rows += cases.length;
            checkAgainstReference(a, kernels, cases, boundary);
          },
        ),
        { numRuns: 300, seed: 19 },
      );
      expect(boundary.count).toBeLessThanOrEqual(rows / 200);
    });

    test(`${kernels}: the reference's token for the same u, at a 32000 vocabulary`, () => {
      const boundary = { count: 0 };
      fc.assert(
        fc.property(fc.array(caseArb(fc.constant(32000)), { minLength: 1, maxLength: 3 }), (cases) =>
          checkAgainstReference(a, kernels, cases, boundary),
        ),
        { numRuns: 25, seed: 20 },
      );
      expect(boundary.count).toBeLessThanOrEqual(1);
    });
  }

  test("greedy is the argmax, ties to the lowest id, on every path", () => {
    const rows = [
      Float32Array.of(1, 3, 3, Number.NEGATIVE_INFINITY, 3),
      Float32Array.of(Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY),
      Float32Array.from({ length: 37 }, (_, i) => (i === 21 || i === 33 ? 5 : i % 5)),
      Float32Array.from({ length: 37 }, (_, i) => (i === 36 ? 0.5 : -i)),
    ];
    const expected = [1, 0, 21, 36];
    for (const kernels of a.kernelPaths()) {
      for (const [i, row] of rows.entries()) {
        const params = sampleParams([
          { logits: row, rawLogits: row, temperature: 0, topK: 0, topP: 1, minP: 0, u: 0, logprobs: 0 },
        ]);
        expect(
          a.kernelSample(kernels, [row], [row], params, row.length, 1).tokenIds[0],
          `${kernels} row ${i}`,
        ).toBe(expected[i]);
      }
    }
  });

  test("bad rows and parameters are refused with an error naming them", () => {
    const row = new Float32Array(8);
    const good = [1, 0, 1, 0, 0.5, 0];
    const call = (params: number[], rows = [row], vocab = 8) =>
      a.kernelSample("scalar", rows, rows, Float64Array.from(params), vocab, 1);
    expect(() => call([1, 0, 1, 0, 1, 0])).toThrow(/row 0: u must be in \[0, 1\)/);
    expect(() => call([1, 0, 0, 0, 0.5, 0])).toThrow(/topP/);
    expect(() => call([-1, 0, 1, 0, 0.5, 0])).toThrow(/temperature/);
    expect(() => call([1, 2.5, 1, 0, 0.5, 0])).toThrow(/integers/);
    expect(() => call(good, [row], 9)).toThrow(/rows\[0\] holds 8 values, needs 9/);
    expect(() => call([...good, ...good])).toThrow(/same rows/);
  });
});

/** The native backend with its sampler hidden: the engine then samples with the JS Sampler. */
function withJsSampler(backend: NativeBackend): Backend {
  return {
    name: backend.name,
    initKvCache: (spec) => backend.initKvCache(spec),
    forward: (batch) => backend.forward(batch),
  };
}

describe.skipIf(!addon)("the engine on the native backend samples what the JS sampler samples", () => {
  const model = loadModel(bundledModelPath);
  const prompts = ["In the beginning", "And God said, Let there be light", "The LORD is my shepherd"];
  const requests: Partial<SamplingParams>[] = [
    { temperature: 0.9, seed: 3, maxTokens: 40, logprobs: 3 },
    { temperature: 1.2, seed: 4, maxTokens: 40, topK: 20, topP: 0.9, minP: 0.02 },
    { temperature: 0.7, seed: 5, maxTokens: 40, repetitionPenalty: 1.3, frequencyPenalty: 0.4, logprobs: 1 },
    { temperature: 0, maxTokens: 30, presencePenalty: 0.5, logprobs: 2 },
  ];

  for (const kernels of addon?.kernelPaths() ?? []) {
    test(`${kernels}: the same seeded tokens and log-probabilities`, async () => {
      const native = await NativeBackend.load(model, { kernels, threads: 2 });
      const nativeLlm = await LLM.fromModel(model, { backend: native, numBlocks: 200 });
      const jsLlm = await LLM.fromModel(model, {
        backend: withJsSampler(await NativeBackend.load(model, { kernels, threads: 2 })),
        numBlocks: 200,
      });
      for (const params of requests) {
        const fromNative = await nativeLlm.generate(prompts, params);
        const fromJs = await jsLlm.generate(prompts, params);
        fromNative.forEach((out, i) => {
          const [n, j] = [out.outputs[0], fromJs[i].outputs[0]];
          expect(n.tokenIds, JSON.stringify(params)).toEqual(j.tokenIds);
          expect(n.tokenIds.length).toBeGreaterThan(10);
          for (const [t, s] of n.logprobs.entries()) {
            const r = j.logprobs[t];
            expect(s.logprob === undefined).toBe(r.logprob === undefined);
            if (r.logprob === undefined) continue;
            expect(s.logprob).toBeCloseTo(r.logprob, 9);
            expect(s.topLogprobs?.map((x) => x.tokenId)).toEqual(r.topLogprobs?.map((x) => x.tokenId));
          }
        });
      }
    });
  }
});

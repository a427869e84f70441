/**
 * What vellum really achieves on this machine, for the `cpu-local` profile, measured on the model's own
 * shapes. A datasheet roofline assumes peak bandwidth at batch 1 and peak FLOPs when batched; a CPU's int8
 * forward pass reaches neither (its matmul is instruction-bound, small steps pay for many small matrices and
 * thread hand-offs, see issue 7), attention is far from either, and a serving step also pays for the engine's
 * own work and for the clients sharing the cores. So the rates come from a real serving loop instead: a vellum
 * server in this process serves a probe model (the model's shapes, random weights) to streaming clients
 * (serving-probe.ts), and every engine step reports its composition and where its time went (StepStats: the
 * forward pass as the engine waits for it, its attention by the backend's own timer, sampling; the rest of the
 * time to the next step is the engine's overhead). Fitted over those steps:
 * - forward: seconds per byte of the layers' weights of the forward pass less its attention and classifier, and
 *   the classifier's seconds per byte of its weights, at each batch size of decodes (the mean: a step's time has a
 *   long tail on a shared machine, and TPOT and throughput average it);
 * - decode attention: at each number of decodes in a step, once, per (query, key) pair and per key read from
 *   memory, over its decode steps at short contexts, at long contexts of their own and over a long prefix they
 *   share (decodes stream their K/V faster the more of them run, and a shared block's keys come from cache for
 *   all but the first);
 * - prefill attention: once, per chunk token and per pair, over the steps with prefill chunks (at many positions,
 *   alone and beside the decodes of streams that arrived before);
 * - sampling (greedy, the temperature 0 that `bench serve` sends, like vLLM's benchmark): per step and per logit;
 * - overhead: per step and per scheduled request.
 */
import { type KernelPath, loadNativeAddon } from "../backend/native/addon.js";
import { physicalCores } from "../backend/native/physical-cores.js";
import type { StepShape } from "../core/scheduler-output.js";
import type { ModelConfig } from "../model/config.js";
import { nonNegativeLeastSquares } from "./least-squares.js";
import { probeModel } from "./probe-model.js";
import { probeChunkTokens, runServingProbe } from "./serving-probe.js";
import { type MeasuredStep, measuredSteps } from "./step-terms.js";
import type { HardwareProfile, KvDtype, MeasuredRates, WeightDtype } from "./types.js";

/** What the rates are measured for: the model's shapes and the dtypes it is simulated with. */
export interface MeasuredRatesFor {
  config: ModelConfig;
  weightDtype: WeightDtype;
  kvDtype: KvDtype;
  /** The native kernel path the server runs; default: the best this CPU runs. */
  kernels?: KernelPath;
}

/**
 * Every batch size to 8: the kernels go through a batch in tiles of a few tokens (4 with VNNI, 3 on AVX2), so
 * the small batches' costs step with the tiles, where no line between powers of two follows them.
 */
const probeBatches = [1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64];
const shortPrompt = 16;
const outputTokens = 24;
/** Each batch size's round runs this many times, interleaved, so that a slow spell touches them all alike. */
const passes = 2;
/**
 * Long contexts: a prompt that goes through in chunks at many positions, then each batch size over a long prefix
 * and over long contexts of its own (stream i's prompt is the same in every round, so the prefix cache computes
 * each once: 64 prompts of longOwnPrompt tokens in all).
 */
const longPrompt = 448;
const longOwnPrompt = 256;
/**
 * A loaded server's steps: streams arriving while others decode, two at a time waiting for their first token, so
 * that nearly every step carries a prefill chunk beside up to ~32 decodes (each stream decodes 64 tokens while the
 * next ones arrive two chunks apart), at short and at long contexts.
 */
const loadedRounds = [
  {
    streams: 64,
    sharedPrefixTokens: 0,
    promptTokens: 2 * probeChunkTokens,
    outputTokens: 64,
    awaitingFirstToken: 2,
  },
  {
    streams: 32,
    sharedPrefixTokens: longPrompt,
    promptTokens: probeChunkTokens,
    outputTokens: 32,
    awaitingFirstToken: 2,
  },
];

export async function measureRates(f: MeasuredRatesFor, threads: number): Promise<MeasuredRates> {
  const probe = probeModel(f.config, f.weightDtype);
  const shortRounds = probeBatches.map((streams) => ({
    streams,
    sharedPrefixTokens: 0,
    promptTokens: shortPrompt,
    outputTokens,
  }));
  const longRounds = [
    { streams: 1, sharedPrefixTokens: 0, promptTokens: longPrompt, outputTokens },
    ...probeBatches.flatMap((streams) => [
      { streams, sharedPrefixTokens: longPrompt, promptTokens: shortPrompt, outputTokens },
      { streams, sharedPrefixTokens: 0, promptTokens: longOwnPrompt, outputTokens },
    ]),
  ];
  const rounds = await runServingProbe(
    probe,
    [...Array(passes).fill(shortRounds).flat(), ...longRounds, ...loadedRounds],
    {
      threads,
      kernels: f.kernels,
      kvDtype: f.kvDtype,
    },
  );
  const steps = rounds.flatMap((round) => measuredSteps(round.steps));
  const isDecode = ({ step }: MeasuredStep) => step.shape.prefillTokens === 0;
  const decodesOf = (batch: number) => {
    const decodes = steps.filter((m) => isDecode(m) && m.step.shape.decodeRequests === batch);
    if (decodes.length === 0) throw new Error(`measured rates: no decode step of ${batch} requests`);
    return decodes;
  };
  const secondsPerWeightByte = probeBatches.map(
    (batch) =>
      mean(decodesOf(batch).map(({ step, terms }) => terms.forward - step.classifierSeconds)) /
      probe.bodyBytes,
  );
  const classifierSecondsPerByte = probeBatches.map(
    (batch) => mean(decodesOf(batch).map(({ step }) => step.classifierSeconds)) / probe.classifierBytes,
  );
  const decodeAttention = probeBatches.map((batch) => {
    const decodes = decodesOf(batch);
    return nonNegativeLeastSquares(
      decodes.map(({ step }) => [1, step.shape.decodePairs, step.shape.decodeKeys]),
      decodes.map(({ terms }) => terms.attention),
    );
  });
  const attention = {
    decodeStepSeconds: decodeAttention.map(([once]) => once),
    decodePairSeconds: decodeAttention.map(([, perPair]) => perPair),
    decodeKeySeconds: decodeAttention.map(([, , perKey]) => perKey),
  };
  const prefills = steps.filter((m) => !isDecode(m));
  const [prefillStepSeconds, prefillTokenSeconds, prefillPairSeconds] = nonNegativeLeastSquares(
    prefills.map(({ step }) => [1, step.shape.prefillTokens, step.shape.prefillPairs]),
    prefills.map(
      ({ step, terms }) => terms.attention - decodeAttentionSeconds(probeBatches, attention, step.shape),
    ),
  );
  const sampled = steps.filter(({ step }) => step.shape.numSampled > 0);
  const [samplingStep, samplingRow] = nonNegativeLeastSquares(
    sampled.map(({ step }) => [1, step.shape.numSampled]),
    sampled.map(({ terms }) => terms.sampling),
  );
  const [overheadStep, overheadRequest] = nonNegativeLeastSquares(
    steps.map(({ step }) => [1, step.shape.numRequests]),
    steps.map(({ terms }) => terms.overhead),
  );

  return {
    weightDtype: f.weightDtype,
    batches: probeBatches,
    secondsPerWeightByte,
    classifierSecondsPerByte,
    attention: { ...attention, prefillStepSeconds, prefillTokenSeconds, prefillPairSeconds },
    sampling: { stepSeconds: samplingStep, logitSeconds: samplingRow / f.config.vocabSize },
    overhead: { stepSeconds: overheadStep, requestSeconds: overheadRequest },
  };
}

/** Means, not medians: a step's time has a long tail here (other tenants), and TPOT and throughput average it. */
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * `profile` with vellum's measured rates when it is cpu-local and the native addon loads (on all physical
 * cores, as `vellum serve` runs); any other profile as it is.
 */
export async function withMeasuredRates(
  profile: HardwareProfile,
  f: MeasuredRatesFor,
): Promise<HardwareProfile> {
  if (profile.name !== "cpu-local" || loadNativeAddon() instanceof Error) return profile;
  const measuredRates = await measureRates(f, physicalCores());
  const kernels = f.kernels && f.kernels !== "auto" ? `, ${f.kernels} kernels` : "";
  return {
    ...profile,
    description: `${profile.description}; every step term timed serving the model's shapes (${f.weightDtype}${kernels})`,
    measuredRates,
  };
}

/**
 * The mean of rates measured at several moments (e.g. right before and right after a run they should predict):
 * this machine's speed drifts with the other tenants of its host, by tens of percent within minutes.
 */
export function meanRates(measured: readonly MeasuredRates[]): MeasuredRates {
  const average = (values: unknown[]): unknown => {
    const [first] = values;
    if (typeof first === "number") return (values as number[]).reduce((a, b) => a + b, 0) / values.length;
    if (Array.isArray(first)) return first.map((_, i) => average(values.map((v) => (v as unknown[])[i])));
    if (typeof first === "object" && first !== null)
      return Object.fromEntries(
        Object.keys(first).map((k) => [k, average(values.map((v) => (v as Record<string, unknown>)[k]))]),
      );
    return first;
  };
  return average([...measured]) as MeasuredRates;
}

/**
 * `values` measured at `batches` (ascending), at `x`: linear between measured sizes and the first below the first.
 * Beyond the last (64), a cost of the whole step grows in proportion to x (the native matmul goes through a larger
 * batch in chunks of 64, each streaming the weights again; twice the decodes, twice their attention's fixed cost),
 * and a cost per unit stays as measured.
 */
function atBatch(
  batches: number[],
  values: number[],
  x: number,
  beyond: "proportional" | "constant",
): number {
  const last = batches.length - 1;
  if (x >= batches[last])
    return beyond === "proportional" ? (values[last] * x) / batches[last] : values[last];
  let i = 1;
  while (batches[i] < x) i++;
  const at = Math.max(x, batches[0]);
  return (
    values[i - 1] + ((values[i] - values[i - 1]) * (at - batches[i - 1])) / (batches[i] - batches[i - 1])
  );
}

/** Forward-pass seconds, less attention and classifier, for `bytes` of layer weights and a batch of `tokens`. */
export function forwardSeconds(rates: MeasuredRates, bytes: number, tokens: number): number {
  return tokens <= 0 ? 0 : bytes * atBatch(rates.batches, rates.secondsPerWeightByte, tokens, "proportional");
}

/** Classifier seconds for `bytes` of its weights and `rows` of logits. */
export function classifierSeconds(rates: MeasuredRates, bytes: number, rows: number): number {
  return rows <= 0 ? 0 : bytes * atBatch(rates.batches, rates.classifierSecondsPerByte, rows, "proportional");
}

/** Attention seconds of a step's decodes: its decodeRequests, with decodePairs (query, key) pairs and decodeKeys keys. */
export function decodeAttentionSeconds(
  batches: number[],
  a: Pick<MeasuredRates["attention"], "decodeStepSeconds" | "decodePairSeconds" | "decodeKeySeconds">,
  s: Pick<StepShape, "decodeRequests" | "decodePairs" | "decodeKeys">,
): number {
  const requests = s.decodeRequests;
  if (requests <= 0) return 0;
  return (
    atBatch(batches, a.decodeStepSeconds, requests, "proportional") +
    s.decodePairs * atBatch(batches, a.decodePairSeconds, requests, "constant") +
    s.decodeKeys * atBatch(batches, a.decodeKeySeconds, requests, "constant")
  );
}

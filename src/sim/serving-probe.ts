import { Worker } from "node:worker_threads";
import { untilKvCacheResident } from "../backend/backend.js";
import type { KernelPath } from "../backend/native/addon.js";
import { createEngine } from "../engine/create-engine.js";
import type { StepStats } from "../engine/stats.js";
import type { LoadedModel } from "../model/model.js";
import { syntheticVocab } from "../model/synth/synth-vocab.js";
import { createTokenizer } from "../model/tokenizer/create.js";
import { workerBootstrap } from "../model/tokenizer/off-thread.js";
import { buildServer } from "../server/server.js";
import type { WorkloadPrompt } from "../workload/dataset.js";
import type { Target } from "../workload/openai-client.js";
import type { ClientJob, ClientReply } from "./probe-client-worker.js";
import type { ProbeModel } from "./probe-model.js";
import type { KvDtype } from "./types.js";

/**
 * One round of the probe: `streams` streaming completions, each of a prompt and then `outputTokens`. The prompt is
 * `sharedPrefixTokens` every stream shares (computed once, by a request just before the round, and read from the
 * prefix cache by the round's requests: long contexts at little cost) and `promptTokens` of its own.
 */
export interface ProbeRound {
  streams: number;
  sharedPrefixTokens: number;
  promptTokens: number;
  outputTokens: number;
  /**
   * Streams are sent so that at most this many wait for their first token at a time: their prefill chunks run
   * beside the decodes of the streams before them, as in a loaded server's steps. Absent: all at once.
   */
  awaitingFirstToken?: number;
}

export interface ProbeRoundSteps {
  round: ProbeRound;
  /** Every engine step of the round, in order. */
  steps: StepStats[];
}

/** A request's prefill goes through in chunks of this many tokens, so a long prompt gives chunks at many positions. */
export const probeChunkTokens = 64;
const blockSize = 16;

/**
 * Serves the probe model (the model's shapes, random weights, a generated vocabulary) with a real vellum server in
 * this process, on the native backend, and runs each round's streaming completions against it over HTTP from a
 * thread of its own with `bench serve`'s client: what every step of a real serving loop costs on this machine,
 * the clients' share of the cores included. Returns each round's engine steps (StepStats: composition and time split).
 */
export async function runServingProbe(
  probe: ProbeModel,
  rounds: readonly ProbeRound[],
  o: { threads: number; kernels?: KernelPath; kvDtype: KvDtype },
): Promise<ProbeRoundSteps[]> {
  const model: LoadedModel = {
    config: probe.config,
    tensors: probe.tensors,
    tokenizer: createTokenizer(syntheticVocab(probe.config.vocabSize), "probe"),
    name: "probe-synthetic",
    format: "gguf",
    path: "synthetic:probe",
  };
  // Enough blocks for the largest round: its shared prefix once, each stream's own tokens, the pool's null block.
  const blocks = (tokens: number) => Math.ceil(tokens / blockSize);
  const numBlocks =
    1 +
    Math.max(
      ...rounds.map(
        (r) => blocks(r.sharedPrefixTokens) + r.streams * (1 + blocks(r.promptTokens + r.outputTokens)),
      ),
    );
  const { engine } = await createEngine(model, {
    backend: "native",
    threads: o.threads,
    kernels: o.kernels,
    kvCacheDtype: o.kvDtype === "fp32" ? "f32" : "f16",
    numBlocks,
    blockSize,
    maxNumSeqs: Math.max(...rounds.map((r) => r.streams)),
    longPrefillTokenThreshold: probeChunkTokens,
  });
  await untilKvCacheResident(engine.core.backend);
  const server = buildServer(engine, model);
  const url = await server.app.listen({ host: "127.0.0.1", port: 0 });
  let steps: StepStats[] = [];
  engine.onStep((s) => steps.push(s));
  const results: ProbeRoundSteps[] = [];
  const client = new ProbeClient();
  try {
    const target: Target = {
      baseUrl: url,
      endpoint: "completions",
      model: "probe-synthetic",
      ignoreEos: true,
    };
    // Each stream's own tokens distinct, after the round's shared prefix.
    const send = (round: ProbeRound, streams: number) =>
      client.run({
        target,
        prompts: Array.from({ length: streams }, (_, i) => probePrompt(round, i, probe.config.vocabSize)),
        awaitingFirstToken: round.awaitingFirstToken ?? streams,
      });
    await send({ ...rounds[0], sharedPrefixTokens: 0, streams: 1 }, 1); // warm-up: threads started, scratch grown, weights paged in
    for (const round of rounds) {
      if (round.sharedPrefixTokens > 0) await send({ ...round, promptTokens: 0, outputTokens: 1 }, 1); // caches it
      steps = [];
      await send(round, round.streams);
      results.push({ round, steps });
    }
  } finally {
    await client.close();
    await server.close(0);
  }
  return results;
}

/** The round's shared prefix (its own per round), then stream `stream`'s own tokens. */
function probePrompt(r: ProbeRound, stream: number, vocabSize: number): WorkloadPrompt {
  const id = (seed: number, i: number) => 3 + ((seed * 7919 + i * 104729) % (vocabSize - 3));
  const promptTokenIds = [
    ...Array.from({ length: r.sharedPrefixTokens }, (_, i) => id(1000 + r.streams, i)),
    ...Array.from({ length: r.promptTokens }, (_, i) => id(stream, i + r.sharedPrefixTokens)),
  ];
  return { promptTokenIds, promptText: "", textIsPrompt: false, outputLen: r.outputTokens };
}

/** The client thread (probe-client-worker.ts): one job at a time. */
class ProbeClient {
  private readonly worker = new Worker(workerBootstrap(import.meta.url, "probe-client-worker"), {
    eval: true,
  });

  run(job: ClientJob): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => reject(new Error(`serving probe: ${err.message}`));
      this.worker.once("error", fail);
      this.worker.once("message", ({ error }: ClientReply) => {
        this.worker.off("error", fail);
        if (error === undefined) resolve();
        else fail(new Error(error));
      });
      this.worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

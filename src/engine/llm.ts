import { type SamplingParams, samplingParams } from "../core/sampling-params.js";
import { type LoadOptions, loadModel } from "../model/load.js";
import type { LoadedModel } from "../model/model.js";
import type { AsyncEngine } from "./async-engine.js";
import { createEngine, type EngineOptions } from "./create-engine.js";
import { type CompletionDelta, type CompletionOutput, collectCompletions } from "./output-processor.js";

export interface GenerationOutput {
  promptTokenIds: number[];
  outputs: CompletionOutput[];
}

/**
 * The offline API: `const llm = await LLM.load({ model }); await llm.generate(prompts, params)`.
 * All prompts go to the engine at once and are batched by the scheduler; results come back in input order.
 */
export class LLM {
  private constructor(
    readonly model: LoadedModel,
    readonly engine: AsyncEngine,
    readonly kvCacheSummary: string,
  ) {}

  static async load(opts: { model: string } & LoadOptions & EngineOptions): Promise<LLM> {
    const { model: path, tokenizer, ...engineOptions } = opts;
    return LLM.fromModel(loadModel(path, { tokenizer }), engineOptions);
  }

  static async fromModel(model: LoadedModel, opts: EngineOptions = {}): Promise<LLM> {
    const { engine, summary } = await createEngine(model, opts);
    return new LLM(model, engine, summary);
  }

  /** Text prompts are encoded with the model's BOS handling; token-id prompts are used as given. */
  async generate(
    prompts: (string | number[])[],
    params: Partial<SamplingParams> = {},
  ): Promise<GenerationOutput[]> {
    const full = samplingParams(params);
    const encoded = prompts.map((p) => (typeof p === "string" ? this.model.tokenizer.encode(p) : p));
    const streams: AsyncIterableIterator<CompletionDelta>[] = [];
    try {
      for (const ids of encoded) streams.push(this.engine.generate(ids, full));
    } catch (err) {
      // One prompt was rejected: the ones already queued must not run on unwatched.
      for (const stream of streams) await stream.return?.();
      throw err;
    }
    return Promise.all(
      streams.map(async (stream, i) => ({
        promptTokenIds: encoded[i],
        outputs: await collectCompletions(stream),
      })),
    );
  }
}

import type { ModelConfig } from "../model/config.js";
import { type AdamWState, adamWStep, clipGradNorm, learningRate, newAdamWState } from "./adamw.js";
import { type TokenStream, trainingBatch } from "./batches.js";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import type { Compute } from "./compute.js";
import { LlamaGraph } from "./llama-graph.js";
import { initParams, type ParamSet, zeroGrads } from "./params.js";
import type { TrainConfig } from "./train-config.js";

/**
 * The state of one training run and its step: batch of the step → forward → backward → clip → AdamW at the
 * scheduled learning rate. Everything that decides a step (seed, step number, parameters, Adam moments) is in
 * the checkpoint, so a resumed run continues exactly where it stopped.
 */
export class Trainer {
  readonly params: ParamSet;
  readonly adam: AdamWState;
  readonly graph: LlamaGraph;

  constructor(
    config: ModelConfig,
    private readonly optimizer: TrainConfig["optimizer"],
    private readonly seed: number,
    private readonly stream: TokenStream,
    private readonly bosId: number,
    compute: Compute,
  ) {
    this.params = initParams(config, compute, seed);
    this.adam = newAdamWState(this.params, compute.alloc);
    this.graph = new LlamaGraph(config, this.params, compute, optimizer.batchSize, config.maxSeqLen);
  }

  /** Steps taken so far. */
  get step(): number {
    return this.adam.step;
  }

  /** Takes one optimizer step; returns the batch's loss (nats/token) before the update. */
  trainStep(): number {
    const o = this.optimizer;
    const step = this.adam.step;
    const batch = trainingBatch(this.stream, o.batchSize, this.graph.seqLen, this.bosId, this.seed, step);
    const { loss } = this.graph.forward(batch.inputs, batch.targets);
    this.graph.backward();
    clipGradNorm(this.params, o.gradClip);
    adamWStep(this.params, this.adam, o, learningRate(step, { ...o, totalSteps: o.steps }));
    zeroGrads(this.params);
    return loss;
  }

  save(path: string) {
    saveCheckpoint(path, this.params, this.adam);
  }

  /** Resumes from `path`; false when there is no checkpoint there. */
  load(path: string): boolean {
    return loadCheckpoint(path, this.params, this.adam);
  }
}

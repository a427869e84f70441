import type { Backend, ForwardBatch } from "../backend/backend.js";
import type { SchedulerOutput } from "../core/scheduler-output.js";
import { allowsOnly, GrammarMasks } from "./grammar-masks.js";
import { type SampledToken, Sampler } from "./sampler.js";

/**
 * Turns a SchedulerOutput into one flat varlen batch, runs the backend once, and samples a token for each
 * request whose tokens this step reaches the end of. Knows tensors, never policies.
 * Holds one Sampler (and so one seeded RNG) per request for the request's whole life, preemptions included,
 * so a preempted request samples exactly what it would have sampled without the preemption; likewise
 * its grammar matcher. Structured outputs: the masks of constrained requests are filled while the forward
 * pass runs, and applied to their logits before sampling.
 */
export class ModelRunner {
  private readonly samplers = new Map<string, Sampler>();
  private readonly grammarMasks: GrammarMasks;

  constructor(
    private readonly backend: Backend,
    private readonly blockSize: number,
    private readonly vocabSize: number,
  ) {
    this.grammarMasks = new GrammarMasks(vocabSize);
  }

  async execute(output: SchedulerOutput): Promise<Map<string, SampledToken>> {
    for (const id of output.finishedIds) {
      this.samplers.delete(id);
      this.grammarMasks.release(id);
    }
    const sampled = new Map<string, SampledToken>();
    if (output.scheduled.length === 0) return sampled;

    const [logits, masks] = await Promise.all([
      this.backend.forward(this.buildBatch(output)),
      this.grammarMasks.fill(output.scheduled),
    ]);
    let row = 0;
    for (const { request, samples } of output.scheduled) {
      if (!samples) continue;
      let rowLogits = logits.subarray(row * this.vocabSize, (row + 1) * this.vocabSize);
      row++;
      const p = request.samplingParams;
      const mask = masks.get(request.id);
      const stopIds = [...request.eosTokenIds, ...p.stopTokenIds];
      // min_tokens: the request may not end yet, so EOS and stop tokens cannot be drawn, unless its grammar
      // has ended and allows nothing else (the grammar wins: the output is complete).
      if (request.outputTokenIds.length < p.minTokens && !(mask && allowsOnly(mask, stopIds))) {
        rowLogits = rowLogits.slice();
        for (const id of stopIds) rowLogits[id] = Number.NEGATIVE_INFINITY;
      }
      let sampler = this.samplers.get(request.id);
      if (!sampler) {
        sampler = new Sampler(p);
        this.samplers.set(request.id, sampler);
      }
      const sample = sampler.sample(rowLogits, request.promptTokenIds, request.outputTokenIds, mask);
      if (p.grammar) this.grammarMasks.accept(request.id, sample.tokenId);
      sampled.set(request.id, sample);
    }
    return sampled;
  }

  /**
   * Flattens the scheduled tokens of every request back to back, with a slot mapping and block tables per KV
   * cache group; slot = block · blockSize + offset, through the group's own table.
   */
  private buildBatch(output: SchedulerOutput): ForwardBatch {
    const n = output.numScheduledTokens;
    const numSeqs = output.scheduled.length;
    const numGroups = output.scheduled[0].blockIds.length;
    const tokenIds = new Int32Array(n);
    const positions = new Int32Array(n);
    const slotMappings = Array.from({ length: numGroups }, () => new Int32Array(n));
    const queryStartLoc = new Int32Array(numSeqs + 1);
    const seqLens = new Int32Array(numSeqs);
    const blockTables: Int32Array[][] = Array.from({ length: numGroups }, () => []);
    const logitsIndices: number[] = [];
    let t = 0;
    output.scheduled.forEach(({ request, numComputedTokens, numNewTokens, blockIds, samples }, s) => {
      queryStartLoc[s] = t;
      for (let pos = numComputedTokens; pos < numComputedTokens + numNewTokens; pos++, t++) {
        tokenIds[t] = request.allTokenIds[pos];
        positions[t] = pos;
        const block = Math.floor(pos / this.blockSize);
        const offset = pos % this.blockSize;
        for (let g = 0; g < numGroups; g++) slotMappings[g][t] = blockIds[g][block] * this.blockSize + offset;
      }
      seqLens[s] = numComputedTokens + numNewTokens;
      for (let g = 0; g < numGroups; g++) blockTables[g].push(Int32Array.from(blockIds[g]));
      if (samples) logitsIndices.push(t - 1);
    });
    queryStartLoc[numSeqs] = t;
    return {
      tokenIds,
      positions,
      slotMappings,
      queryStartLoc,
      seqLens,
      blockTables,
      logitsIndices: Int32Array.from(logitsIndices),
    };
  }
}

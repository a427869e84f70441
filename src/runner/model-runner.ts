import type { Backend, ForwardBatch, ForwardTimes, SampleRow } from "../backend/backend.js";
import type { Request } from "../core/request.js";
import type { SchedulerOutput } from "../core/scheduler-output.js";
import { allowsOnly, GrammarMasks } from "./grammar-masks.js";
import { PromptLogprobsCollector, type PromptRows, type PromptTokenLogprob } from "./prompt-logprobs.js";
import { type SampledToken, Sampler, withLogprobs } from "./sampler.js";

/** What one step produced: a token per request that sampled, and the prompt log-probs of those that asked. */
export interface RunnerOutput {
  sampled: Map<string, SampledToken>;
  /** Given with a request's first token, for requests whose params ask for promptLogprobs. */
  promptLogprobs: Map<string, PromptTokenLogprob[]>;
  times: RunnerTimes;
}

/** Where the runner's part of a step went, wall seconds as the JS thread waits for them. */
export interface RunnerTimes {
  /** The forward pass (with the grammar masks filled meanwhile). */
  forwardSeconds: number;
  sampleSeconds: number;
  /** The backend's own split of that forward pass, where it measures one. */
  backend?: ForwardTimes;
}

/** One token to sample this step: its request, the request's Sampler, its logits row and grammar mask. */
interface Draw {
  request: Request;
  sampler: Sampler;
  logits: Float32Array;
  mask?: Int32Array;
}

/**
 * Turns a SchedulerOutput into one flat varlen batch, runs the backend once, and samples a token for each
 * request whose tokens this step reaches the end of. Knows tensors, never policies.
 * Holds one Sampler (and so one seeded RNG) per request for the request's whole life, preemptions included,
 * so a preempted request samples exactly what it would have sampled without the preemption; likewise
 * its grammar matcher. Structured outputs: the masks of constrained requests are filled while the forward
 * pass runs, and applied to their logits before sampling. A backend that samples (Backend.sample) samples the
 * whole step's rows at once off the JS thread; otherwise each request's Sampler does, here.
 */
export class ModelRunner {
  private readonly samplers = new Map<string, Sampler>();
  private readonly promptLogprobs = new PromptLogprobsCollector();
  private readonly grammarMasks: GrammarMasks;
  /** Rows the requests' own rules changed, for the backend's sampler: grown to the largest step's. */
  private ruleRows = new Float32Array(0);
  /**
   * The logits of steps that want no prompt rows (one row per sampling request), kept across steps and grown to
   * the largest such step's: a decode step allocates nothing for them.
   */
  private sampledLogits = new Float32Array(0);

  constructor(
    private readonly backend: Backend,
    private readonly blockSize: number,
    private readonly vocabSize: number,
  ) {
    this.grammarMasks = new GrammarMasks(vocabSize);
  }

  async execute(output: SchedulerOutput): Promise<RunnerOutput> {
    for (const id of output.finishedIds) {
      this.samplers.delete(id);
      this.promptLogprobs.drop(id);
      this.grammarMasks.release(id);
    }
    const times: RunnerTimes = { forwardSeconds: 0, sampleSeconds: 0 };
    const result: RunnerOutput = { sampled: new Map(), promptLogprobs: new Map(), times };
    if (output.scheduled.length === 0) return result;

    const promptRows = output.scheduled.map((s) => this.promptLogprobs.rowsWanted(s));
    const forwardStarted = performance.now();
    const batch = this.buildBatch(output, promptRows);
    const [logits, masks] = await Promise.all([
      this.backend.forward(batch, this.logitsBuffer(batch, promptRows)),
      this.grammarMasks.fill(output.scheduled),
    ]);
    times.forwardSeconds = (performance.now() - forwardStarted) / 1000;
    times.backend = this.backend.lastForwardTimes && { ...this.backend.lastForwardTimes };
    let row = 0;
    const draws: Draw[] = [];
    for (const [s, { request, samples }] of output.scheduled.entries()) {
      const rows = promptRows[s];
      if (rows) {
        const n = rows.to - rows.from;
        const rowsLogits = logits.subarray(row * this.vocabSize, (row + n) * this.vocabSize);
        this.promptLogprobs.add(request, rows, rowsLogits, this.vocabSize);
        row += n;
      }
      if (!samples) continue;
      let rowLogits = logits.subarray(row * this.vocabSize, (row + 1) * this.vocabSize);
      row++;
      const p = request.samplingParams;
      const mask = masks.get(request.id);
      // min_tokens: the request may not end yet, so EOS and stop tokens cannot be drawn, unless its grammar
      // has ended and allows nothing else (the grammar wins: the output is complete).
      if (request.outputTokenIds.length < p.minTokens) {
        const stopIds = [...request.eosTokenIds, ...p.stopTokenIds];
        if (!(mask && allowsOnly(mask, stopIds))) {
          rowLogits = rowLogits.slice();
          for (const id of stopIds) rowLogits[id] = Number.NEGATIVE_INFINITY;
        }
      }
      let sampler = this.samplers.get(request.id);
      if (!sampler) {
        sampler = new Sampler(p);
        this.samplers.set(request.id, sampler);
      }
      const prompt = this.promptLogprobs.take(request);
      if (prompt) result.promptLogprobs.set(request.id, prompt);
      draws.push({ request, sampler, logits: rowLogits, mask });
    }
    const sampleStarted = performance.now();
    const samples = this.backend.sample
      ? await this.sampleOnBackend(draws, this.backend.sample.bind(this.backend))
      : this.sampleHere(draws);
    times.sampleSeconds = (performance.now() - sampleStarted) / 1000;
    draws.forEach(({ request }, i) => {
      if (request.samplingParams.grammar) this.grammarMasks.accept(request.id, samples[i].tokenId);
      result.sampled.set(request.id, samples[i]);
    });
    return result;
  }

  /**
   * Where the step's logits may go: the kept buffer when they are only the sampled rows; prompt log-prob rows (up to
   * a chunk's worth) get a fresh array, so the kept one stays as small as a decode step needs.
   */
  private logitsBuffer(
    batch: ForwardBatch,
    promptRows: (PromptRows | undefined)[],
  ): Float32Array | undefined {
    if (promptRows.some((rows) => rows !== undefined)) return undefined;
    const needed = batch.logitsIndices.length * this.vocabSize;
    if (this.sampledLogits.length < needed) this.sampledLogits = new Float32Array(needed);
    return this.sampledLogits;
  }

  /** Each draw with its request's JS Sampler (the reference). */
  private sampleHere(draws: readonly Draw[]): SampledToken[] {
    return draws.map(({ request, sampler, logits, mask }) =>
      sampler.sample(logits, request.promptTokenIds, request.outputTokenIds, mask),
    );
  }

  /**
   * Every draw in one backend call: the requests' own rules applied here (sparse, or a mask), into rows of
   * `ruleRows` where they change a row; the uniforms from each request's Rng, as its Sampler would draw them.
   */
  private async sampleOnBackend(
    draws: readonly Draw[],
    sample: NonNullable<Backend["sample"]>,
  ): Promise<SampledToken[]> {
    if (draws.length === 0) return [];
    const ruled = draws.map(({ sampler, mask }) => sampler.changesLogits(mask));
    const numRuled = ruled.filter(Boolean).length;
    if (this.ruleRows.length < numRuled * this.vocabSize)
      this.ruleRows = new Float32Array(numRuled * this.vocabSize);
    let next = 0;
    const rows: SampleRow[] = draws.map(({ request, sampler, logits, mask }, i) => {
      let row = logits;
      if (ruled[i]) {
        row = this.ruleRows.subarray(next * this.vocabSize, ++next * this.vocabSize);
        row.set(logits);
        sampler.applyRules(row, logits, request.promptTokenIds, request.outputTokenIds, mask);
      }
      const { temperature, topK, topP, minP, logprobs } = request.samplingParams;
      const u = sampler.nextUniform();
      return { logits: row, rawLogits: logits, temperature, topK, topP, minP, u, logprobs };
    });
    const picked = await sample(rows);
    return picked.map(({ tokenId, logNormalizer, topIds }, i) =>
      rows[i].logprobs === 0 ? { tokenId } : withLogprobs(tokenId, rows[i].rawLogits, logNormalizer, topIds),
    );
  }

  /**
   * Flattens the scheduled tokens of every request back to back, with a slot mapping and block tables per KV
   * cache group; slot = block · blockSize + offset, through the group's own table. Logits are wanted for each
   * request's `promptRows`, then for its last token when it samples.
   */
  private buildBatch(output: SchedulerOutput, promptRows: (PromptRows | undefined)[]): ForwardBatch {
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
      const rows = promptRows[s];
      if (rows)
        for (let pos = rows.from; pos < rows.to; pos++)
          logitsIndices.push(queryStartLoc[s] + pos - numComputedTokens);
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

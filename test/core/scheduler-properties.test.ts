import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NULL_BLOCK } from "../../src/core/block-pool.js";
import { KVCacheManager } from "../../src/core/kv-cache-manager.js";
import { isFinished, Request } from "../../src/core/request.js";
import type { SchedulingPolicy } from "../../src/core/request-queue.js";
import { samplingParams } from "../../src/core/sampling-params.js";
import { AdmissionError, Scheduler } from "../../src/core/scheduler.js";
import type { SchedulerOutput } from "../../src/core/scheduler-output.js";

const EOS = 0;
const VOCAB = 64;
const MAX_MODEL_LEN = 64;

/** The fake model: the next token is a hash of the whole context; 1 in 16 contexts ends with EOS. */
function nextToken(context: readonly number[], numOutput: number, minTokens: number): number {
  let h = 0x811c9dc5;
  for (const t of context) h = Math.imul(h ^ t, 0x01000193) >>> 0;
  const token = h % VOCAB;
  // min_tokens masks EOS, as the real runner does.
  return token === EOS && numOutput < minTokens ? 1 : token;
}

/** What a request generates alone, computed without scheduler or KV cache: the expected output. */
function soloOutput(
  prompt: readonly number[],
  maxTokens: number,
  minTokens: number,
  ignoreEos: boolean,
): number[] {
  const out: number[] = [];
  while (out.length < maxTokens && prompt.length + out.length < MAX_MODEL_LEN) {
    const t = nextToken([...prompt, ...out], out.length, minTokens);
    out.push(t);
    if (t === EOS && !ignoreEos && out.length >= minTokens) break;
  }
  return out;
}

/**
 * A runner without a model that still uses the paged KV cache for real: it writes each scheduled token
 * into its slot (block · blockSize + offset) in every KV cache group and "attends" by reading back, through
 * each group's block table, what that group's layers see from the last token: the whole context, or the
 * window. It samples nextToken(context read) from the full context, which a model with full-attention layers
 * reads, or from the request's tokens when every group is a window. A wrong slot mapping, a block shared that
 * should not be, a block freed while still in a window, or a prefix-cache hit on a block never written shows
 * up as a context that differs from the request's tokens. All writes of a step happen before any read, as in
 * the real backend.
 */
class FakeRunner {
  private readonly slots: Int32Array;

  constructor(
    numBlocks: number,
    private readonly blockSize: number,
    private readonly groupWindows: readonly number[],
  ) {
    this.slots = new Int32Array(numBlocks * blockSize).fill(-1);
  }

  execute(output: SchedulerOutput): Map<string, number> {
    const bs = this.blockSize;
    for (const { request, numComputedTokens, numNewTokens, blockIds } of output.scheduled) {
      for (const table of blockIds) {
        for (let pos = numComputedTokens; pos < numComputedTokens + numNewTokens; pos++) {
          check(
            table[Math.floor(pos / bs)] !== NULL_BLOCK,
            `${request.id} writes position ${pos} to a block`,
          );
          this.slots[table[Math.floor(pos / bs)] * bs + (pos % bs)] = request.allTokenIds[pos];
        }
      }
    }
    const sampled = new Map<string, number>();
    for (const { request, numComputedTokens, numNewTokens, blockIds, samples } of output.scheduled) {
      if (!samples) continue;
      const seqLen = numComputedTokens + numNewTokens;
      let context = request.allTokenIds.slice(0, seqLen);
      blockIds.forEach((table, g) => {
        const window = this.groupWindows[g];
        const from = window === 0 ? 0 : Math.max(0, seqLen - window);
        const seen = Array.from(
          { length: seqLen - from },
          (_, i) => this.slots[table[Math.floor((from + i) / bs)] * bs + ((from + i) % bs)],
        );
        if (seen.some((t, i) => t !== request.allTokenIds[from + i])) {
          expect(seen, `KV cache content of ${request.id}, group ${g}`).toEqual(
            request.allTokenIds.slice(from, seqLen),
          );
        }
        if (window === 0) context = seen;
      });
      const p = request.samplingParams;
      sampled.set(request.id, nextToken(context, request.outputTokenIds.length, p.minTokens));
    }
    return sampled;
  }
}

/** A per-step invariant: a plain condition, since expect() in every step of every run would be slow. */
function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`invariant broken: ${what}`);
}

interface Job {
  arrivalStep: number;
  /** Prompts are prefixes of a few base sequences plus a tail, so prefix-cache hits happen. */
  base: number;
  prefixLen: number;
  tail: number[];
  maxTokens: number;
  minTokens: number;
  ignoreEos: boolean;
  priority: number;
  abortStep: number | undefined;
}

interface Setup {
  policy: SchedulingPolicy;
  batching: "continuous" | "static";
  blockSize: number;
  numBlocks: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  longPrefillTokenThreshold: number;
  maxPrefillTokensPerStep: number;
  enablePrefixCaching: boolean;
  /** KV cache groups: one full group, full and window groups (Gemma-like), or windows only. */
  groupWindows: number[];
  jobs: Job[];
}

const BASES = [0, 1, 2].map((b) =>
  Array.from({ length: 40 }, (_, i) => 1 + ((i * 7 + b * 13 + ((i * i) % 5)) % (VOCAB - 1))),
);

const jobArb: fc.Arbitrary<Job> = fc.record({
  arrivalStep: fc.integer({ min: 0, max: 12 }),
  base: fc.integer({ min: 0, max: 2 }),
  prefixLen: fc.integer({ min: 0, max: 40 }),
  tail: fc.array(fc.integer({ min: 1, max: VOCAB - 1 }), { maxLength: 6 }),
  maxTokens: fc.integer({ min: 1, max: 20 }),
  minTokens: fc.integer({ min: 0, max: 3 }),
  ignoreEos: fc.boolean(),
  priority: fc.integer({ min: 0, max: 3 }),
  abortStep: fc.option(fc.integer({ min: 0, max: 40 }), { freq: 5, nil: undefined }),
});

const setupArb: fc.Arbitrary<Setup> = fc.record({
  policy: fc.constantFrom<SchedulingPolicy>("fcfs", "priority"),
  batching: fc.constantFrom<Setup["batching"]>("continuous", "continuous", "static"),
  blockSize: fc.constantFrom(2, 4, 8),
  numBlocks: fc.integer({ min: 6, max: 40 }),
  maxNumBatchedTokens: fc.integer({ min: 1, max: 48 }),
  maxNumSeqs: fc.integer({ min: 1, max: 8 }),
  longPrefillTokenThreshold: fc.constantFrom(0, 0, 3, 8),
  maxPrefillTokensPerStep: fc.constantFrom(0, 0, 4, 10),
  enablePrefixCaching: fc.boolean(),
  groupWindows: fc.constantFrom([0], [0], [0, 6, 6], [5], [0, 3]),
  jobs: fc.array(jobArb, { minLength: 1, maxLength: 14 }),
});

/**
 * Where preemption meets the prefix cache: one shared prompt base, tight pools, priorities. (This found a
 * request preempted after its chunk had been scheduled in the same step, leaving cached blocks never written.)
 */
const sharedPrefixSetupArb: fc.Arbitrary<Setup> = setupArb.chain((setup) =>
  fc.integer({ min: 6, max: 24 }).map((numBlocks) => ({
    ...setup,
    policy: "priority" as const,
    enablePrefixCaching: true,
    numBlocks,
    jobs: setup.jobs.map((job) => ({ ...job, base: 0, arrivalStep: job.arrivalStep % 4 })),
  })),
);

function promptOf(job: Job): number[] {
  const prompt = [...BASES[job.base].slice(0, job.prefixLen), ...job.tail];
  return prompt.length > 0 ? prompt : [1];
}

/** Checks the block tables of the running requests against each other and the pool's reference counts. */
function checkBlockTables(s: Scheduler): void {
  const m = s.kvCacheManager;
  const holders = new Map<number, { request: Request; index: number; group: number }[]>();
  for (const request of s.running) {
    m.getBlockIds(request.id).forEach((table, group) => {
      check(
        table.length * m.blockSize >= request.numComputedTokens,
        `${request.id} has blocks for its computed tokens`,
      );
      table.forEach((block, index) => {
        if (block === NULL_BLOCK) return;
        const list = holders.get(block) ?? [];
        list.push({ request, index, group });
        holders.set(block, list);
      });
    });
  }
  for (const request of s.waiting)
    check(m.getBlockIds(request.id).flat().length === 0, `waiting ${request.id} holds no blocks`);
  for (const [block, list] of holders) {
    check(
      list.every((h) => h.group === list[0].group),
      `block ${block} is in the tables of one group only`,
    );
    check(
      Number.isInteger(block) && block > NULL_BLOCK && block < m.blockPool.numBlocks,
      `block ${block} is in the pool`,
    );
    check(m.blockPool.refCount(block) === list.length, `ref count of block ${block} = tables holding it`);
    check(!m.blockPool.isFree(block), `block ${block} in a table is not free`);
    if (list.length === 1) continue;
    // A block in several tables is a shared full block: cached, same place, same tokens up to its end.
    check(m.blockPool.blockHash(block) !== undefined, `shared block ${block} is a cached full block`);
    const { request: first, index } = list[0];
    const end = (index + 1) * m.blockSize;
    for (const other of list.slice(1)) {
      check(other.index === index, `shared block ${block} is at the same place in each table`);
      check(
        other.request.allTokenIds.slice(0, end).join() === first.allTokenIds.slice(0, end).join(),
        `requests sharing block ${block} have the same tokens up to its end`,
      );
    }
  }
}

/**
 * Independently of the manager: the most blocks a request of numTokens holds at once. A full group holds
 * them all; a window group at most the window − 1 tokens before a chunk, the chunk, and a block where the
 * window starts mid-block.
 */
function blocksNeeded(setup: Setup, numTokens: number): number {
  const all = Math.ceil(numTokens / setup.blockSize);
  const chunk = setup.maxNumBatchedTokens;
  return setup.groupWindows
    .map((w) => (w === 0 ? all : Math.min(all, Math.ceil((w - 1 + chunk) / setup.blockSize) + 1)))
    .reduce((a, b) => a + b, 0);
}

/** (priority, arrival) under priority, arrival alone under fcfs: the order admission must respect. */
function rank(policy: SchedulingPolicy, r: Request): [number, number] {
  return policy === "priority" ? [r.priority, r.timestamps.arrival] : [0, r.timestamps.arrival];
}
const ranksBefore = (a: [number, number], b: [number, number]) =>
  a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

interface RunResult {
  requests: Map<number, Request>;
  rejected: Set<number>;
  preemptions: number;
  kvCacheUsage: number;
}

/** Drives the scheduler with the fake runner until every job has arrived and ended, checking each step. */
function run(setup: Setup): RunResult {
  let step = 0;
  const manager = new KVCacheManager({
    numBlocks: setup.numBlocks,
    blockSize: setup.blockSize,
    maxModelLen: MAX_MODEL_LEN,
    enablePrefixCaching: setup.enablePrefixCaching,
    groupWindows: setup.groupWindows,
    maxChunkTokens: setup.maxNumBatchedTokens,
  });
  const s = new Scheduler(
    {
      maxNumSeqs: setup.maxNumSeqs,
      maxNumBatchedTokens: setup.maxNumBatchedTokens,
      maxModelLen: MAX_MODEL_LEN,
      longPrefillTokenThreshold: setup.longPrefillTokenThreshold,
      maxPrefillTokensPerStep: setup.maxPrefillTokensPerStep,
      policy: setup.policy,
      batching: setup.batching,
    },
    manager,
    () => step,
  );
  const runner = new FakeRunner(setup.numBlocks, setup.blockSize, setup.groupWindows);
  const requests = new Map<number, Request>();
  const rejected = new Set<number>();
  const lastStep = Math.max(...setup.jobs.map((j) => j.arrivalStep));
  let preemptions = 0;
  // static batching: whether the batch running now has produced a token (then it admits no one until it ends).
  let batchDecoding = false;
  // Generous: every token of every job scheduled alone, several times over, plus the arrival window.
  const totalTokens = setup.jobs.reduce((sum, j) => sum + promptOf(j).length + j.maxTokens, 0);
  const stepLimit = lastStep + 10 * totalTokens + 100;

  while (step <= lastStep || s.hasUnfinishedRequests) {
    check(step < stepLimit, `every request ended within ${stepLimit} steps`);
    setup.jobs.forEach((job, i) => {
      if (job.arrivalStep === step) {
        const promptTokenIds = promptOf(job);
        const request = new Request({
          id: `r${i}`,
          promptTokenIds,
          samplingParams: samplingParams({
            maxTokens: job.maxTokens,
            minTokens: Math.min(job.minTokens, job.maxTokens),
            ignoreEos: job.ignoreEos,
          }),
          arrivalTime: step,
          priority: job.priority,
          eosTokenIds: [EOS],
        });
        const numTokens = promptTokenIds.length + job.maxTokens;
        if (numTokens > MAX_MODEL_LEN || blocksNeeded(setup, numTokens) > setup.numBlocks - 1) {
          expect(() => s.addRequest(request)).toThrow(AdmissionError);
          rejected.add(i);
        } else {
          s.addRequest(request);
          requests.set(i, request);
        }
      }
      const request = requests.get(i);
      if (job.abortStep === step && request && !isFinished(request.status)) {
        s.finishRequests([request.id], "FINISHED_ABORTED");
        expect(manager.getBlockIds(request.id).flat()).toEqual([]);
      }
    });

    const hadWork = s.hasUnfinishedRequests;
    if (s.running.length === 0) batchDecoding = false;
    const waitingBefore = new Set(s.waiting);
    const output = s.schedule();
    preemptions += output.preemptedIds.length;

    // Budgets.
    check(output.numScheduledTokens <= setup.maxNumBatchedTokens, "token budget");
    check(
      output.scheduled.reduce((sum, r) => sum + r.numNewTokens, 0) === output.numScheduledTokens,
      "numScheduledTokens is the sum of the requests' tokens",
    );
    check(s.running.length <= setup.maxNumSeqs, "max running requests");
    // Prefill: a request that needed more than one token this step (a decode needs exactly one).
    const prefillTokens = output.scheduled
      .filter((r) => r.request.numTokens - r.numComputedTokens > 1)
      .reduce((sum, r) => sum + r.numNewTokens, 0);
    const prefillCap = setup.maxPrefillTokensPerStep;
    check(prefillCap === 0 || prefillTokens <= prefillCap, "prefill tokens within maxPrefillTokensPerStep");
    for (const r of output.scheduled) {
      check(r.numNewTokens > 0, `${r.request.id} scheduled with tokens`);
      const cap = setup.longPrefillTokenThreshold;
      check(cap === 0 || r.numNewTokens <= cap, `${r.request.id} chunk within longPrefillTokenThreshold`);
      r.blockIds.forEach((table, g) => {
        check(
          table.length * setup.blockSize >= r.numComputedTokens + r.numNewTokens,
          `${r.request.id} has slots for its tokens`,
        );
        // a window group holds exactly the blocks from the one its first query of the step reaches back to
        const window = setup.groupWindows[g];
        const first =
          window === 0 ? 0 : Math.floor(Math.max(0, r.numComputedTokens - window + 1) / setup.blockSize);
        check(
          table.every((block, i) => (block === NULL_BLOCK) === i < first),
          `${r.request.id} group ${g} holds the blocks from ${first} on`,
        );
      });
    }
    // Progress: a step with work to do always schedules something (no stall, no livelock).
    check(!hadWork || output.scheduled.length > 0, `step ${step} with work scheduled something`);
    checkBlockTables(s);

    // Admission order: no request admitted this step ranks behind one left waiting.
    const admitted = s.running.filter((r) => waitingBefore.has(r));
    for (const a of admitted) {
      for (const w of s.waiting) {
        // Under fcfs, requests re-admitted after preemption are ordered by admission, not arrival.
        if (setup.policy === "fcfs" && (a.numPreemptions > 0 || w.numPreemptions > 0)) continue;
        check(
          !ranksBefore(rank(setup.policy, w), rank(setup.policy, a)),
          `${w.id} waits while ${a.id} is admitted`,
        );
      }
    }

    // static batching: a batch that has produced a token takes no one in until it has ended.
    check(
      setup.batching === "continuous" || admitted.length === 0 || !batchDecoding,
      "static batch joined while decoding",
    );
    if (s.updateFromOutput(output, runner.execute(output)).length > 0) batchDecoding = true;
    step++;
  }
  return { requests, rejected, preemptions, kvCacheUsage: manager.usage };
}

/**
 * Runs the workload and checks how every request ended; when something was preempted, reruns it in a pool
 * where nothing is. Says whether preemption and prefix hits happened, so the generators can be checked.
 */
function checkWorkload(setup: Setup): { preempted: boolean; prefixHits: boolean } {
  const { requests, rejected, preemptions, kvCacheUsage } = run(setup);
  expect(kvCacheUsage, "KV cache usage after all requests ended").toBe(0);
  expect(requests.size + rejected.size).toBe(setup.jobs.length);
  let prefixHits = false;
  for (const [i, r] of requests) {
    const job = setup.jobs[i];
    expect(isFinished(r.status), `${r.id} ended`).toBe(true);
    const solo = soloOutput(r.promptTokenIds, job.maxTokens, r.samplingParams.minTokens, job.ignoreEos);
    if (r.status === "FINISHED_ABORTED") {
      expect(solo.slice(0, r.outputTokenIds.length)).toEqual(r.outputTokenIds);
    } else {
      expect(r.outputTokenIds, `${r.id} output`).toEqual(solo);
      const stoppedByEos = solo[solo.length - 1] === EOS && !job.ignoreEos;
      expect(r.status).toBe(stoppedByEos ? "FINISHED_STOPPED" : "FINISHED_LENGTH");
    }
    if (r.numCachedTokens > 0) prefixHits = true;
  }
  if (preemptions > 0) {
    const roomy = run({
      ...setup,
      numBlocks:
        1 + setup.jobs.length * setup.groupWindows.length * Math.ceil(MAX_MODEL_LEN / setup.blockSize),
    });
    expect(roomy.preemptions).toBe(0);
    for (const [i, r] of requests) {
      const other = roomy.requests.get(i);
      if (r.status !== "FINISHED_ABORTED" && other?.status !== "FINISHED_ABORTED") {
        expect(r.outputTokenIds, `${r.id} with and without preemption`).toEqual(other?.outputTokenIds);
      }
    }
  }
  return { preempted: preemptions > 0, prefixHits };
}

describe("Scheduler with a real KVCacheManager and a fake runner (property tests)", () => {
  for (const [name, arb] of [
    ["random workloads, fcfs and priority", setupArb],
    ["shared prefixes under preemption, priority", sharedPrefixSetupArb],
  ] as const) {
    it(`${name}: budgets, block tables, admission order, solo outputs, all blocks free at the end`, () => {
      let runsWithPreemption = 0;
      let runsWithPrefixHits = 0;
      fc.assert(
        fc.property(arb, (setup) => {
          const { preempted, prefixHits } = checkWorkload(setup);
          if (preempted) runsWithPreemption++;
          if (prefixHits) runsWithPrefixHits++;
        }),
        { numRuns: 400 },
      );
      console.log(
        `${name}: ${runsWithPreemption} of 400 runs preempted, ${runsWithPrefixHits} had prefix hits`,
      );
      // The generators must actually exercise preemption and the prefix cache.
      expect(runsWithPreemption).toBeGreaterThan(10);
      expect(runsWithPrefixHits).toBeGreaterThan(10);
    });
  }

  it("never serves a prefix-cache hit from a block whose writer was preempted in the step that filled it", () => {
    // Shrunk from a counterexample of the property above: r1 (priority 1) fills a block, then r0
    // (priority 0) needs blocks in the same step and preempts it; when r1 resumes it hits that block.
    const job = (arrivalStep: number, priority: number, prefixLen: number, tail: number[]): Job => ({
      arrivalStep,
      base: 0,
      prefixLen,
      tail,
      maxTokens: 1,
      minTokens: 0,
      ignoreEos: false,
      priority,
      abortStep: undefined,
    });
    const { preempted } = checkWorkload({
      policy: "priority",
      batching: "continuous",
      blockSize: 8,
      numBlocks: 6,
      maxNumBatchedTokens: 6,
      maxNumSeqs: 2,
      longPrefillTokenThreshold: 3,
      maxPrefillTokensPerStep: 0,
      enablePrefixCaching: true,
      groupWindows: [0],
      jobs: [job(17, 0, 20, [1, 1, 1, 1, 1]), job(15, 1, 20, [1, 1, 1, 1, 1]), job(0, 0, 0, [])],
    });
    expect(preempted).toBe(true);
  });
});

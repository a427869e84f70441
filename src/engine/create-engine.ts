import type { Backend, KvCacheDtype } from "../backend/backend.js";
import type { InterleaveProgress, KernelPath } from "../backend/native/addon.js";
import { type BackendName, chooseBackend, describeBackend } from "../backend/native/choose-backend.js";
import {
  type KvCacheGroup,
  kvCacheGroups,
  layersPerBlock,
  maxBlocksPerRequest,
} from "../core/kv-cache-groups.js";
import {
  defaultKvBudget,
  kvBytesPerBlock,
  type MemoryView,
  numBlocksForBudget,
} from "../core/kv-cache-sizing.js";
import type { KvCacheEvent } from "../core/kv-events.js";
import type { LoadedModel } from "../model/model.js";
import { formatBytes, parseByteSize } from "../util/byte-size.js";
import { AsyncEngine } from "./async-engine.js";
import { defaultEngineConfig, type EngineConfig } from "./engine-config.js";
import { EngineCore } from "./engine-core.js";
import { readMemoryView } from "./memory-view.js";
import { type StepRates, stepBudgets } from "./step-budget.js";

export interface EngineOptions extends Partial<Omit<EngineConfig, "numBlocks" | "kvCacheGroups">> {
  /**
   * Keep every block of every layer, sliding-window layers included, in one KV cache group (vLLM's
   * --disable-hybrid-kv-cache-manager): window layers then only mask what they do not read.
   */
  disableHybridKvCacheManager?: boolean;
  /** KV cache budget: bytes or a size such as "4GiB"; default: a share of the memory left (defaultKvBudget). */
  kvCacheMemory?: string | number;
  /** The machine's memory, for the default budget; default: measured (tests give their own). */
  memory?: MemoryView;
  /** Number of KV blocks, overriding kvCacheMemory (tests use tiny pools). */
  numBlocks?: number;
  /** A backend object, or which one to build: default native when its addon loads, else reference (one warning). */
  backend?: Backend | BackendName;
  /** Compute threads of the native backend; default: physical cores. */
  threads?: number;
  /** The native backend's kernel path; default: the best this CPU runs. */
  kernels?: KernelPath;
  /** Told the native backend's progress laying out the weights for its kernels (the CLI's bar). */
  onInterleaveProgress?: InterleaveProgress;
  /**
   * Step costs measured on the backend (serve measures them): where neither maxNumBatchedTokens nor
   * longPrefillTokenThreshold is set, they cap each step's prefill tokens (step-budget.ts); without them, no cap.
   */
  stepRates?: StepRates;
  clock?: () => number;
  /** Given, after each step's scheduling, the KV cache events it caused (a publisher: kv-events-publisher.ts). */
  onKvEvents?: (events: KvCacheEvent[]) => void;
}

/** Share of the memory left (free, or under the cgroup limit, less mapped weights) that the KV cache takes by default. */
const defaultKvMemoryFraction = 0.3;

/**
 * Builds the engine for a model: the config, the KV cache size and the one-line summary to log. The native
 * backend's heavy work runs off the event loop, so a server answers its liveness probe meanwhile.
 */
export async function createEngine(
  model: LoadedModel,
  options: EngineOptions = {},
): Promise<{ engine: AsyncEngine; summary: string }> {
  const {
    kvCacheMemory,
    memory,
    backend: givenBackend,
    threads,
    kernels,
    onInterleaveProgress,
    stepRates,
    clock: givenClock,
    onKvEvents,
    disableHybridKvCacheManager,
    ...opts
  } = options;
  const maxModelLen = engineMaxModelLen(model, opts.maxModelLen);
  const blockSize = opts.blockSize ?? defaultEngineConfig.blockSize;
  const maxNumSeqs = opts.maxNumSeqs ?? defaultEngineConfig.maxNumSeqs;
  const budgets = stepBudgets(opts, stepRates, blockSize);
  const maxNumBatchedTokens = Math.max(budgets.maxNumBatchedTokens, 1);
  const kvCacheDtype = opts.kvCacheDtype ?? defaultEngineConfig.kvCacheDtype;
  // Contiguous allocation reserves every block up front, as servers without paging do: nothing to give back.
  const hybrid =
    !disableHybridKvCacheManager && (opts.kvAllocation ?? defaultEngineConfig.kvAllocation) === "paged";
  const groups = kvCacheGroups(model.config.layerWindows, hybrid);
  const blockBytes = kvBytesPerBlock(model.config, layersPerBlock(groups), blockSize, kvCacheDtype);
  const windows = groups.map((g) => g.window);
  const blocksPerSequence = maxBlocksPerRequest(windows, maxModelLen, blockSize, maxNumBatchedTokens);
  // The backend first: memory is measured once it holds the weights it copies.
  const backend = await engineBackend(model, {
    backend: givenBackend,
    threads,
    kernels,
    maxModelLen,
    onInterleaveProgress,
  });
  // More than every sequence at full length (and the null block) can never be used.
  const useful = blocksPerSequence * maxNumSeqs + 1;
  const { numBlocks, budgetNote } =
    opts.numBlocks !== undefined
      ? { numBlocks: opts.numBlocks, budgetNote: "KV blocks set directly" }
      : kvBlocks(kvBudget(kvCacheMemory, memory, backend), blockBytes, blockSize, useful);
  const config: EngineConfig = {
    ...defaultEngineConfig,
    ...opts,
    maxModelLen,
    blockSize,
    kvCacheDtype,
    maxNumSeqs,
    maxNumBatchedTokens,
    longPrefillTokenThreshold: budgets.longPrefillTokenThreshold,
    maxPrefillTokensPerStep: budgets.maxPrefillTokensPerStep,
    numBlocks,
    kvCacheGroups: groups,
  };
  const clock = givenClock ?? (() => performance.now() / 1000);
  const core = new EngineCore(backend, model.config.vocabSize, config, clock, onKvEvents);
  const cache = kvCacheSummary({
    dtype: kvCacheDtype,
    numBlocks,
    blockSize,
    blockBytes,
    groups,
    maxModelLen,
    blocksPerSequence,
  });
  const measured =
    stepRates && budgets.measured
      ? `; prefill budget ${budgets.maxPrefillTokensPerStep} tokens per step from measured rates (decode step ${(stepRates.decodeStepSeconds * 1000).toFixed(1)} ms, prefill ${(stepRates.prefillTokenSeconds * 1000).toFixed(2)} ms/token)`
      : "";
  const summary = `${cache}; ${budgetNote}; backend ${describeBackend(backend)}${measured}`;
  return { engine: new AsyncEngine(core, model.tokenizer, clock), summary };
}

/** The longest sequence an engine for this model takes: as asked, at most the model's own. */
export function engineMaxModelLen(model: LoadedModel, maxModelLen: number | undefined): number {
  return Math.min(maxModelLen ?? model.config.maxSeqLen, model.config.maxSeqLen);
}

/** The backend createEngine runs on; serve builds it first to measure step rates on it. */
export async function engineBackend(
  model: LoadedModel,
  options: Pick<EngineOptions, "backend" | "threads" | "maxModelLen" | "kernels" | "onInterleaveProgress">,
): Promise<Backend> {
  const { backend, threads, maxModelLen, kernels, onInterleaveProgress } = options;
  if (typeof backend === "object") return backend;
  const contextLength = engineMaxModelLen(model, maxModelLen);
  return chooseBackend(model, { name: backend, threads, contextLength, kernels, onInterleaveProgress });
}

/** The KV budget in bytes and how it was set: --kv-cache-memory, or a share of the memory left. */
function kvBudget(
  kvCacheMemory: string | number | undefined,
  memory: MemoryView | undefined,
  backend: Backend,
): { bytes: number; derivation: string } {
  if (kvCacheMemory !== undefined) {
    const bytes = typeof kvCacheMemory === "number" ? kvCacheMemory : parseByteSize(kvCacheMemory);
    return { bytes, derivation: `${formatBytes(bytes)} as given` };
  }
  return defaultKvBudget(memory ?? readMemoryView(), backend.mappedWeightBytes ?? 0, defaultKvMemoryFraction);
}

/** The blocks a budget buys, at most `useful`; the note says how the number came about. */
function kvBlocks(
  budget: { bytes: number; derivation: string },
  blockBytes: number,
  blockSize: number,
  useful: number,
): { numBlocks: number; budgetNote: string } {
  const bought = numBlocksForBudget(budget.bytes, blockBytes, blockSize);
  const note = `KV budget ${budget.derivation}`;
  return bought > useful
    ? { numBlocks: useful, budgetNote: `${note}, capped at max-num-seqs full-length sequences` }
    : { numBlocks: bought, budgetNote: note };
}

export interface KvCacheSummaryInput {
  dtype: KvCacheDtype;
  /** Blocks, the null block included. */
  numBlocks: number;
  blockSize: number;
  /** Bytes of one block: K and V of blockSize tokens in layersPerBlock(groups) layers. */
  blockBytes: number;
  groups: readonly KvCacheGroup[];
  maxModelLen: number;
  /** The most blocks one sequence of maxModelLen tokens holds (maxBlocksPerRequest). */
  blocksPerSequence: number;
}

/**
 * e.g. "KV cache (f32): 771 blocks of 16 tokens × 26 layers = 385.5 MiB; per sequence at maxModelLen 512: 32
 * blocks = 16.0 MiB; max concurrency 24.1x". With sliding-window layers it names the groups and what one sequence
 * would take if every layer kept every block: "…× 2 layers = 38.5 MiB; 13 groups of 2 layers: 2 full attention,
 * 11 window 512; per sequence at maxModelLen 4096: 112 blocks = 7.0 MiB (every block kept: 26.0 MiB); …".
 * Concurrency = usable blocks / blocks of one maxModelLen sequence.
 */
export function kvCacheSummary(s: KvCacheSummaryInput): string {
  const k = layersPerBlock(s.groups);
  const perSequence = `per sequence at maxModelLen ${s.maxModelLen}: ${s.blocksPerSequence.toLocaleString("en-US")} blocks = ${formatBytes(s.blocksPerSequence * s.blockBytes)}`;
  let layout = "";
  let everyBlockKept = "";
  if (s.groups.some((g) => g.window > 0)) {
    const counts = new Map<number, number>();
    for (const g of s.groups) counts.set(g.window, (counts.get(g.window) ?? 0) + 1);
    const kinds = [...counts].map(([w, n]) => `${n} ${w === 0 ? "full attention" : `window ${w}`}`);
    layout = `; ${s.groups.length} groups of ${k} layers: ${kinds.join(", ")}`;
    const allBlocks = Math.ceil(s.maxModelLen / s.blockSize) * s.groups.length;
    everyBlockKept = ` (every block kept: ${formatBytes(allBlocks * s.blockBytes)})`;
  }
  const concurrency = (s.numBlocks - 1) / s.blocksPerSequence;
  return (
    `KV cache (${s.dtype}): ${s.numBlocks.toLocaleString("en-US")} blocks of ${s.blockSize} tokens × ${k} layer${k === 1 ? "" : "s"} = ` +
    `${formatBytes(s.numBlocks * s.blockBytes)}${layout}; ${perSequence}${everyBlockKept}; max concurrency ${concurrency.toFixed(1)}x`
  );
}

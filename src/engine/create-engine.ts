import type { Backend, KvCacheDtype } from "../backend/backend.js";
import { type BackendName, chooseBackend, describeBackend } from "../backend/native/choose-backend.js";
import {
  defaultKvBudget,
  kvBytesPerToken,
  type MemoryView,
  numBlocksForBudget,
} from "../core/kv-cache-sizing.js";
import type { LoadedModel } from "../model/model.js";
import { formatBytes, parseByteSize } from "../util/byte-size.js";
import { AsyncEngine } from "./async-engine.js";
import { defaultEngineConfig, type EngineConfig } from "./engine-config.js";
import { EngineCore } from "./engine-core.js";
import { readMemoryView } from "./memory-view.js";

export interface EngineOptions extends Partial<Omit<EngineConfig, "numBlocks">> {
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
  clock?: () => number;
}

/** Share of the memory left (free, or under the cgroup limit, less mapped weights) that the KV cache takes by default. */
const defaultKvMemoryFraction = 0.3;

/** Builds the engine for a model: the config, the KV cache size and the one-line summary to log. */
export function createEngine(
  model: LoadedModel,
  options: EngineOptions = {},
): { engine: AsyncEngine; summary: string } {
  const { kvCacheMemory, memory, backend: givenBackend, threads, clock: givenClock, ...opts } = options;
  const maxModelLen = Math.min(opts.maxModelLen ?? model.config.maxSeqLen, model.config.maxSeqLen);
  const blockSize = opts.blockSize ?? defaultEngineConfig.blockSize;
  const maxNumSeqs = opts.maxNumSeqs ?? defaultEngineConfig.maxNumSeqs;
  const kvCacheDtype = opts.kvCacheDtype ?? defaultEngineConfig.kvCacheDtype;
  const bytesPerToken = kvBytesPerToken(model.config, kvCacheDtype);
  // The backend first: memory is measured once it holds the weights it copies.
  const backend =
    typeof givenBackend === "object"
      ? givenBackend
      : chooseBackend(model, givenBackend, threads, maxModelLen);
  // More than every sequence at full length can never be used.
  const useful = Math.ceil(maxModelLen / blockSize) * maxNumSeqs;
  const { numBlocks, budgetNote } =
    opts.numBlocks !== undefined
      ? { numBlocks: opts.numBlocks, budgetNote: "KV blocks set directly" }
      : kvBlocks(kvBudget(kvCacheMemory, memory, backend), bytesPerToken, blockSize, useful);
  const config: EngineConfig = {
    ...defaultEngineConfig,
    ...opts,
    maxModelLen,
    blockSize,
    kvCacheDtype,
    maxNumSeqs,
    maxNumBatchedTokens: Math.max(opts.maxNumBatchedTokens ?? defaultEngineConfig.maxNumBatchedTokens, 1),
    numBlocks,
  };
  const clock = givenClock ?? (() => performance.now() / 1000);
  const core = new EngineCore(backend, model.config.vocabSize, config, clock);
  const summary = `${kvCacheSummary({ dtype: kvCacheDtype, numBlocks, blockSize, bytesPerToken, maxModelLen })}; ${budgetNote}; backend ${describeBackend(backend)}`;
  return { engine: new AsyncEngine(core, model.tokenizer, clock), summary };
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
  bytesPerToken: number,
  blockSize: number,
  useful: number,
): { numBlocks: number; budgetNote: string } {
  const bought = numBlocksForBudget(budget.bytes, bytesPerToken, blockSize);
  const note = `KV budget ${budget.derivation}`;
  return bought > useful
    ? { numBlocks: useful, budgetNote: `${note}, capped at max-num-seqs full-length sequences` }
    : { numBlocks: bought, budgetNote: note };
}

export interface KvCacheSummaryInput {
  dtype: KvCacheDtype;
  numBlocks: number;
  blockSize: number;
  bytesPerToken: number;
  maxModelLen: number;
}

/**
 * e.g. "KV cache (f32): 12,336 tokens (771 blocks of 16), 32.0 KiB/token, 385.5 MiB; max concurrency 24.1x at
 * maxModelLen 512". Concurrency = blocks / blocks of one maxModelLen request.
 */
export function kvCacheSummary(s: KvCacheSummaryInput): string {
  const tokens = s.numBlocks * s.blockSize;
  const concurrency = s.numBlocks / Math.ceil(s.maxModelLen / s.blockSize);
  return (
    `KV cache (${s.dtype}): ${tokens.toLocaleString("en-US")} tokens (${s.numBlocks.toLocaleString("en-US")} blocks of ${s.blockSize}), ` +
    `${formatBytes(s.bytesPerToken)}/token, ${formatBytes(tokens * s.bytesPerToken)}; ` +
    `max concurrency ${concurrency.toFixed(1)}x at maxModelLen ${s.maxModelLen}`
  );
}

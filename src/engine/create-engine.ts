import { freemem } from "node:os";
import type { Backend } from "../backend/backend.js";
import { type BackendName, chooseBackend, describeBackend } from "../backend/native/choose-backend.js";
import {
  kvBudgetFromFreeMemory,
  kvBytesPerToken,
  kvCacheSummary,
  numBlocksForBudget,
  parseByteSize,
} from "../core/kv-cache-sizing.js";
import type { LoadedModel } from "../model/model.js";
import { AsyncEngine } from "./async-engine.js";
import { defaultEngineConfig, type EngineConfig } from "./engine-config.js";
import { EngineCore } from "./engine-core.js";

export interface EngineOptions extends Partial<Omit<EngineConfig, "numBlocks">> {
  /** KV cache budget: bytes or a size such as "4GiB"; default: a fraction of free memory after the weights. */
  kvCacheMemory?: string | number;
  /** Number of KV blocks, overriding kvCacheMemory (tests use tiny pools). */
  numBlocks?: number;
  /** A backend object, or which one to build: default native when its addon loads, else reference (one warning). */
  backend?: Backend | BackendName;
  /** Compute threads of the native backend; default: physical cores. */
  threads?: number;
  clock?: () => number;
}

/** Share of free memory (after weights) that the KV cache takes when no budget is given. */
const defaultKvMemoryFraction = 0.3;

/** Builds the engine for a model: the config, the KV cache size and the one-line summary to log. */
export function createEngine(
  model: LoadedModel,
  options: EngineOptions = {},
): { engine: AsyncEngine; summary: string } {
  const { kvCacheMemory, backend: givenBackend, threads, clock: givenClock, ...opts } = options;
  const maxModelLen = Math.min(opts.maxModelLen ?? model.config.maxSeqLen, model.config.maxSeqLen);
  const blockSize = opts.blockSize ?? defaultEngineConfig.blockSize;
  const maxNumSeqs = opts.maxNumSeqs ?? defaultEngineConfig.maxNumSeqs;
  const kvCacheDtype = opts.kvCacheDtype ?? defaultEngineConfig.kvCacheDtype;
  const bytesPerToken = kvBytesPerToken(model.config, kvCacheDtype);
  let numBlocks = opts.numBlocks;
  if (numBlocks === undefined) {
    const budget =
      kvCacheMemory !== undefined
        ? typeof kvCacheMemory === "number"
          ? kvCacheMemory
          : parseByteSize(kvCacheMemory)
        : kvBudgetFromFreeMemory(freemem(), 0, defaultKvMemoryFraction);
    // More than every sequence at full length can never be used.
    const useful = Math.ceil(maxModelLen / blockSize) * maxNumSeqs + 1;
    numBlocks = Math.min(numBlocksForBudget(budget, bytesPerToken, blockSize), useful);
  }
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
  const backend =
    typeof givenBackend === "object" ? givenBackend : chooseBackend(model, givenBackend, threads);
  const core = new EngineCore(backend, model.config.vocabSize, config, clock);
  const summary = `${kvCacheSummary({ dtype: kvCacheDtype, numBlocks, blockSize, bytesPerToken, maxModelLen })}; backend ${describeBackend(backend)}`;
  return { engine: new AsyncEngine(core, model.tokenizer, clock), summary };
}

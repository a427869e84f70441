import type { KvCacheDtype } from "../backend/backend.js";
import type { KernelPath } from "../backend/native/addon.js";
import { createEngine } from "../engine/create-engine.js";
import type { LoadedModel } from "../model/model.js";
import { withInterleavingBar } from "./progress.js";

/** The backend flags `generate` and `chat` take (backendOptions, kvCacheDtypeOption). */
export interface OneSequenceEngineFlags {
  backend?: "native" | "reference";
  threads?: number;
  kernels?: KernelPath;
  kvCacheDtype: KvCacheDtype;
}

/**
 * The engine of one request or conversation at a time, as `generate` and `chat` run it: a cache of one maxModelLen
 * sequence is all it can use. Built with the interleaving bar.
 */
export function oneSequenceEngine(model: LoadedModel, flags: OneSequenceEngineFlags) {
  return withInterleavingBar((onInterleaveProgress) =>
    createEngine(model, {
      maxNumSeqs: 1,
      backend: flags.backend,
      threads: flags.threads,
      kernels: flags.kernels,
      kvCacheDtype: flags.kvCacheDtype,
      onInterleaveProgress,
    }),
  );
}

import type { LoadedModel } from "../../model/model.js";
import type { Backend } from "../backend.js";
import { ReferenceBackend } from "../reference/reference-backend.js";
import { type InterleaveProgress, type KernelPath, loadNativeAddon } from "./addon.js";
import { NativeBackend } from "./native-backend.js";

export type BackendName = "native" | "reference";

let warned = false;

export interface BackendChoice {
  /** Default: native when the addon loads, else reference with one warning line on stderr per process. */
  name?: BackendName;
  threads?: number;
  /** The longest context served; default the model's maxSeqLen. */
  contextLength?: number;
  kernels?: KernelPath;
  /** The native backend's weight layout progress (NativeBackendOptions.onInterleaveProgress). */
  onInterleaveProgress?: InterleaveProgress;
}

/**
 * The backend for a model. Named "native": the addon must load (its error is thrown otherwise). The native
 * backend is built off the event loop (NativeBackend.load).
 */
export async function chooseBackend(model: LoadedModel, choice: BackendChoice = {}): Promise<Backend> {
  const { name, threads, contextLength, kernels, onInterleaveProgress } = choice;
  if (name === "reference") return new ReferenceBackend(model, { contextLength });
  const addon = loadNativeAddon();
  if (addon instanceof Error) {
    if (name === "native") throw addon;
    if (!warned) {
      warned = true;
      process.stderr.write(
        `warning: native backend unavailable, using the slow reference backend (${addon.message})\n`,
      );
    }
    return new ReferenceBackend(model, { contextLength });
  }
  return NativeBackend.load(model, { threads, contextLength, kernels, onInterleaveProgress });
}

/** One line for startup logs: "native (avx2+fma, 2 threads, weights mapped)" or "reference". */
export function describeBackend(backend: Backend): string {
  return backend instanceof NativeBackend
    ? `native (${backend.kernelPath}, ${backend.threads} threads, weights ${backend.weightSource})`
    : backend.name;
}

import type { LoadedModel } from "../../model/model.js";
import type { Backend } from "../backend.js";
import { ReferenceBackend } from "../reference/reference-backend.js";
import { type KernelPath, loadNativeAddon } from "./addon.js";
import { NativeBackend } from "./native-backend.js";

export type BackendName = "native" | "reference";

let warned = false;

/**
 * The backend for a model served with contexts of up to `contextLength` tokens (default its maxSeqLen). Unnamed:
 * native when the addon loads, else reference with one warning line on stderr per process. Named "native": the
 * addon must load (its error is thrown otherwise).
 */
export function chooseBackend(
  model: LoadedModel,
  name?: BackendName,
  threads?: number,
  contextLength?: number,
  kernels?: KernelPath,
): Backend {
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
  return new NativeBackend(model, { threads, contextLength, kernels });
}

/** One line for startup logs: "native (avx2+fma, 2 threads, weights mapped)" or "reference". */
export function describeBackend(backend: Backend): string {
  return backend instanceof NativeBackend
    ? `native (${backend.kernelPath}, ${backend.threads} threads, weights ${backend.weightSource})`
    : backend.name;
}

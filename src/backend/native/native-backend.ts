import { InputError } from "../../model/errors.js";
import type { LoadedModel } from "../../model/model.js";
import {
  type Backend,
  type ForwardBatch,
  type ForwardTimes,
  type KvCacheSpec,
  type RowSample,
  type SampleRow,
  specGroups,
} from "../backend.js";
import {
  type InterleaveProgress,
  type KernelPath,
  type NativeModel,
  type NativeModelSpec,
  type NativeSampleResult,
  nativeAddon,
} from "./addon.js";
import { specFromGguf, specFromTensors } from "./native-spec.js";
import { physicalCores } from "./physical-cores.js";

export interface NativeBackendOptions {
  /** Compute threads (the calling libuv thread included); default: physical cores. */
  threads?: number;
  /** Kernel path; default "auto" (the best this CPU runs). */
  kernels?: KernelPath;
  /**
   * The longest context the backend serves (the engine's max model length); default the model's maxSeqLen. It
   * picks LongRoPE's short or long frequency factors, as llama.cpp's context size does.
   */
  contextLength?: number;
  /** Told the progress of laying the weights out for the kernels (the CLI's "interleaving weights" bar). */
  onInterleaveProgress?: InterleaveProgress;
}

/**
 * The C++ backend: quantized matmuls, paged attention and the rest of the decoder forward pass on the addon's
 * own threads, so `forward` leaves the event loop free. GGUF weights are memory-mapped and used in place;
 * other formats' weights are read from the loader's buffers in place.
 */
export class NativeBackend implements Backend {
  readonly name = "native";

  private constructor(
    private readonly model: NativeModel,
    /** "mapped": GGUF weights read in place from the memory-mapped file; "buffers": from the loader's buffers. */
    readonly weightSource: "mapped" | "buffers",
    private readonly nLayers: number,
  ) {}

  /**
   * The backend for a model, built off the event loop: the spec is read at once, and the weights are laid out
   * for the kernels (the slow part, seconds for a large model) on the addon's threads.
   */
  static async load(model: LoadedModel, options: NativeBackendOptions = {}): Promise<NativeBackend> {
    const threads = options.threads ?? physicalCores();
    const kernels = options.kernels ?? "auto";
    const contextLength = options.contextLength ?? model.config.maxSeqLen;
    // A model read from GGUF files that are still there is mapped from them; anything else (other formats,
    // models built in memory) is read from the loader's buffers.
    const fromFile =
      model.format === "gguf"
        ? specFromGguf(model.config, model.path, threads, kernels, contextLength, model.tensors)
        : undefined;
    const spec =
      fromFile ?? specFromTensors(model.config, model.tensors, model.path, threads, kernels, contextLength);
    const native = await NativeBackend.prepare(spec, model.path, options.onInterleaveProgress);
    return new NativeBackend(native, fromFile ? "mapped" : "buffers", model.config.nLayers);
  }

  /** e.g. "avx2+fma": the kernels chosen at load. */
  get kernelPath(): string {
    return this.model.kernelPath;
  }

  get threads(): number {
    return this.model.threads;
  }

  get mappedWeightBytes(): number {
    return this.model.mappedWeightBytes;
  }

  get kvCacheResident(): boolean {
    return this.model.kvCacheResident;
  }

  get lastForwardTimes(): ForwardTimes {
    return this.model.lastForwardTimes;
  }

  initKvCache(spec: KvCacheSpec): void {
    const groups = specGroups(spec, this.nLayers).map((g) => Int32Array.from(g.layers));
    this.model.initKvCache(spec.numBlocks, spec.blockSize, spec.dtype, groups);
  }

  async forward(batch: ForwardBatch, out?: Float32Array): Promise<Float32Array> {
    return this.model.forward(
      batch.tokenIds,
      batch.positions,
      batch.slotMappings,
      batch.queryStartLoc,
      batch.seqLens,
      batch.blockTables.flat(),
      batch.logitsIndices,
      out,
    );
  }

  /** The rows sampled on the addon's threads with vectorized kernels (native/src/backend/sampling.h). */
  async sample(rows: SampleRow[]): Promise<RowSample[]> {
    const result = await this.model.sample(
      rows.map((r) => r.logits),
      rows.map((r) => r.rawLogits),
      sampleParams(rows),
    );
    return rowSamples(rows, result);
  }

  private static async prepare(
    spec: NativeModelSpec,
    path: string,
    onProgress: InterleaveProgress | undefined,
  ): Promise<NativeModel> {
    const addon = nativeAddon();
    try {
      const native = new addon.NativeModel(spec);
      await native.prepare(onProgress);
      return native;
    } catch (err) {
      throw new InputError(`${path}: native backend: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** The 6 numbers per row NativeModel.sample reads. */
export function sampleParams(rows: readonly SampleRow[]): Float64Array {
  return Float64Array.from(
    // A top-k beyond the vocabulary keeps every token, as no top-k does (and stays within the addon's int).
    rows.flatMap((r) => [
      r.temperature,
      Math.min(Math.max(r.topK, 0), r.logits.length),
      r.topP,
      r.minP,
      r.u,
      r.logprobs,
    ]),
  );
}

/** The addon's flat result as one RowSample per row. */
export function rowSamples(rows: readonly SampleRow[], result: NativeSampleResult): RowSample[] {
  let top = 0;
  return rows.map((r, i) => {
    const tokenId = result.tokenIds[i];
    if (tokenId < 0) throw new Error("sampler: logits row has no finite value");
    const count = Math.min(r.logprobs, r.rawLogits.length);
    const topIds = Array.from(result.topIds.subarray(top, top + count));
    top += count;
    return { tokenId, logNormalizer: result.logNormalizers[i], topIds };
  });
}

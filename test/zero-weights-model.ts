import { expectedTensors } from "../src/model/config.js";
import { tensorBytes } from "../src/model/dtype.js";
import { storedDTypes } from "../src/model/formats/gguf-model.js";
import type { LoadedModel } from "../src/model/model.js";
import { shapeSpec } from "../src/model/profiles.js";
import { syntheticModel } from "../src/model/synth/synth-model.js";
import type { Tensor } from "../src/model/tensor.js";

/**
 * TinyLlama-1.1B's shapes cut to `layers` layers in q8_0, every weight zero (a scale of 0), tensors of one size
 * sharing one buffer: made at once, where random weights take seconds. Building a backend on it costs what the
 * real model's shapes cost (interleaving depends on sizes, never values). The tokenizer is tiny-test's: for
 * loading, not for generating.
 */
export function zeroWeightsModel(layers: number): LoadedModel {
  const { config } = shapeSpec("tinyllama-1.1b", layers);
  const types = storedDTypes(config, "q8_0");
  const buffers = new Map<number, Uint8Array>();
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of expectedTensors(config)) {
    const dtype = types.get(name) ?? "f32";
    const bytes = tensorBytes(dtype, shape);
    const data = buffers.get(bytes) ?? new Uint8Array(bytes);
    buffers.set(bytes, data);
    tensors.set(name, { dtype, shape, data });
  }
  const tiny = syntheticModel("tiny-test", "f32");
  return { ...tiny, config, tensors, name: "tinyllama-zero", path: "synthetic:tinyllama-zero" };
}

import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { InputError } from "./errors.js";
import { loadGgufModel } from "./formats/gguf-model.js";
import { loadHfModel } from "./formats/hf-model.js";
import { loadLlama2cModel } from "./formats/llama2c-model.js";
import type { LoadedModel, TensorProgress } from "./model.js";

export interface LoadOptions {
  /** Separate tokenizer file, for formats that keep it apart (llama2.c's tokenizer.bin). */
  tokenizer?: string;
  /** Progress of reading the weights (a Hugging Face directory's; GGUF files are mapped, llama2.c's read whole). */
  onProgress?: TensorProgress;
}

/** Loads a GGUF file, a Hugging Face directory (config.json + safetensors) or a llama2.c .bin, by what the path holds. */
export function loadModel(path: string, opts: LoadOptions = {}): LoadedModel {
  if (!existsSync(path)) throw new InputError(`${path}: model not found`);
  if (statSync(path).isDirectory()) return loadHfModel(path, opts.onProgress);
  const magic = Buffer.alloc(4);
  const fd = openSync(path, "r");
  try {
    readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (magic.toString("latin1") === "GGUF") return loadGgufModel(path);
  if (path.endsWith(".bin")) return loadLlama2cModel(path, opts.tokenizer);
  throw new InputError(
    `${path}: unknown model format (expected a GGUF file, a Hugging Face directory or a llama2.c .bin)`,
  );
}

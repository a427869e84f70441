import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ModelConfig } from "../model/config.js";
import { InputError } from "../model/errors.js";
import { readHfConfig } from "../model/formats/hf-config.js";
import { loadModel } from "../model/load.js";
import { modelShapes, shapeConfig } from "../model/profiles.js";

/** A model as the planner sees it: its shapes, and the size its name gives, if any. */
export interface ModelProfile {
  name: string;
  config: ModelConfig;
  /** The size in the model's name ("7b" → 7e9), which back-of-envelope figures start from. */
  nominalParams?: number;
}

/**
 * A shape from profiles/models.json (llama-2-7b and llama2-7b both name it), or PATH: a Hugging Face
 * config.json or a directory holding one, or any model file vellum loads (llama2.c ones with `tokenizer`).
 */
export function modelProfile(nameOrPath: string, tokenizer?: string): ModelProfile {
  const shapeName = modelShapes().has(nameOrPath) ? nameOrPath : nameOrPath.replace(/^llama-(\d)/, "llama$1");
  if (modelShapes().has(shapeName)) {
    return { name: nameOrPath, config: shapeConfig(shapeName), nominalParams: nominalParams(shapeName) };
  }
  if (!existsSync(nameOrPath)) {
    const known = [...modelShapes().keys()].map((n) => n.replace(/^llama(\d)/, "llama-$1"));
    throw new InputError(`unknown model "${nameOrPath}": not a file, nor one of ${known.join(", ")}`);
  }
  const configJson = statSync(nameOrPath).isDirectory() ? join(nameOrPath, "config.json") : nameOrPath;
  const config = configJson.endsWith(".json")
    ? readHfConfig(configJson)
    : loadModel(nameOrPath, { tokenizer }).config;
  return { name: nameOrPath, config };
}

function nominalParams(name: string): number | undefined {
  const m = /-(\d+(?:\.\d+)?)([bm])$/.exec(name);
  if (!m) return undefined;
  return Number(m[1]) * (m[2] === "b" ? 1e9 : 1e6);
}

/** Weights of the Llama architecture: embeddings, per-layer attention and gated FFN, norms, classifier. */
export function parameterCount(c: ModelConfig): number {
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  const attention = c.dim * qDim * 2 + c.dim * kvDim * 2 + (c.attentionBias ? qDim + 2 * kvDim : 0);
  const ffn = 3 * c.dim * c.hiddenDim;
  const perLayer = attention + ffn + 2 * c.dim;
  const embeddings = c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2);
  return embeddings + c.nLayers * perLayer + c.dim;
}

/** Parameters that take part in every token's matmuls: all but the embedding table (a lookup). */
export function matmulParameterCount(c: ModelConfig): number {
  return parameterCount(c) - (c.tiedEmbeddings ? 0 : c.vocabSize * c.dim);
}

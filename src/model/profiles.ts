import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ModelConfig } from "./config.js";
import { InputError } from "./errors.js";
import { type HfModelSpec, hfSpecFromJson } from "./formats/hf-config.js";

const profilesFile = fileURLToPath(new URL("../../profiles/models.json", import.meta.url));

/** Real models' published config.json (the keys vellum reads), by shape name, from the data file profiles/models.json. */
export function modelShapes(): Map<string, Record<string, unknown>> {
  const table = JSON.parse(readFileSync(profilesFile, "utf8")) as Record<string, unknown>;
  return new Map(
    Object.entries(table).filter((e): e is [string, Record<string, unknown>] => typeof e[1] === "object"),
  );
}

/**
 * A named shape's config in GGUF's conventions (llama's Q/K rows interleaved), with the RoPE factor tensors its
 * rope_scaling defines. `layers` cuts the depth to its first layers, which keeps the family's layer pattern
 * (Gemma 3's five windowed layers to one global).
 */
export function shapeSpec(name: string, layers?: number): HfModelSpec {
  const shapes = modelShapes();
  const json = shapes.get(name);
  if (!json) throw new InputError(`unknown shape "${name}" (known: ${[...shapes.keys()].join(", ")})`);
  const depth = json.num_hidden_layers as number;
  if (layers !== undefined && !(Number.isInteger(layers) && layers >= 1 && layers <= depth)) {
    throw new InputError(`${name} has ${depth} layers; cannot cut it to ${layers}`);
  }
  const cut =
    layers === undefined
      ? json
      : {
          ...json,
          num_hidden_layers: layers,
          ...(Array.isArray(json.layer_types) ? { layer_types: json.layer_types.slice(0, layers) } : {}),
        };
  const spec = hfSpecFromJson(cut, `${profilesFile} (shape "${name}")`);
  if (spec.config.architecture === "llama") spec.config.ropeStyle = "interleaved";
  return spec;
}

/** The config of a named shape, in GGUF's conventions. */
export function shapeConfig(name: string): ModelConfig {
  return shapeSpec(name).config;
}

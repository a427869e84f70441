import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type ModelConfig, plainConfig } from "./config.js";
import { InputError } from "./errors.js";

/** The shape fields a profile gives; the rest of ModelConfig follows from them. */
export type ModelShape = Pick<
  ModelConfig,
  | "dim"
  | "hiddenDim"
  | "nLayers"
  | "nHeads"
  | "nKvHeads"
  | "vocabSize"
  | "maxSeqLen"
  | "ropeTheta"
  | "normEps"
  | "tiedEmbeddings"
>;

const profilesFile = fileURLToPath(new URL("../../profiles/models.json", import.meta.url));

/** Real models' architecture shapes, from the data file profiles/models.json. */
export function modelShapes(): Map<string, ModelShape> {
  const table = JSON.parse(readFileSync(profilesFile, "utf8")) as Record<string, ModelShape | string>;
  return new Map(Object.entries(table).filter((e): e is [string, ModelShape] => typeof e[1] === "object"));
}

/** The Llama-architecture config of a named shape. */
export function shapeConfig(name: string): ModelConfig {
  const shapes = modelShapes();
  const shape = shapes.get(name);
  if (!shape) throw new InputError(`unknown shape "${name}" (known: ${[...shapes.keys()].join(", ")})`);
  return plainConfig({
    ...shape,
    headDim: shape.dim / shape.nHeads,
    ropeStyle: "interleaved",
    attentionBias: false,
  });
}

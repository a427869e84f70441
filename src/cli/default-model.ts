import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { InputError } from "../model/errors.js";

/** The project's root (dist/cli/… or src/cli/… are two levels below it). */
export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The model that ships with vellum, trained by the project itself (see models/). */
export const bundledModelPath = join(projectRoot, "models", "kjv-demo", "kjv-demo.gguf");

/** `--model` when given, else $VELLUM_MODEL, else the bundled model. */
export function resolveModelPath(flag: string | undefined): string {
  const path = flag ?? process.env.VELLUM_MODEL ?? bundledModelPath;
  if (!existsSync(path)) {
    throw new InputError(
      flag || process.env.VELLUM_MODEL
        ? `${path}: model not found`
        : `no --model given and the bundled model ${bundledModelPath} is missing: pass --model PATH (a GGUF file, a Hugging Face directory or a llama2.c .bin)`,
    );
  }
  return path;
}

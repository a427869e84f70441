import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { InputError } from "../model/errors.js";
import { isHubRef } from "../model/hub/hub-ref.js";
import { resolveHubModel } from "../model/hub/pull.js";
import { downloadReporter } from "./download-progress.js";

/** The project's root (dist/cli/… or src/cli/… are two levels below it). */
export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The model that ships with vellum, trained by the project itself (see models/). */
export const bundledModelPath = join(projectRoot, "models", "kjv-demo", "kjv-demo.gguf");

/**
 * The local path of `--model` when given, else of $VELLUM_MODEL, else the bundled model. A Hub ref (hf:ORG/REPO…)
 * is found in the Hugging Face cache or downloaded into it, with progress on stderr.
 */
export async function resolveModel(flag: string | undefined): Promise<string> {
  const model = flag ?? process.env.VELLUM_MODEL ?? bundledModelPath;
  if (isHubRef(model)) return hubModelPath(model);
  if (!existsSync(model)) {
    throw new InputError(
      flag || process.env.VELLUM_MODEL
        ? `${model}: model not found`
        : `no --model given and the bundled model ${bundledModelPath} is missing: pass --model PATH (a GGUF file, a Hugging Face directory or a llama2.c .bin) or hf:ORG/REPO[:QUANT]`,
    );
  }
  return model;
}

/** A Hub ref's local path (found in the Hugging Face cache or downloaded into it); any other path as it is. */
export async function hubModelPath(model: string): Promise<string> {
  return isHubRef(model) ? (await resolveHubModel(model, downloadReporter())).path : model;
}

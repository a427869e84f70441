import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../../model/errors.js";
import { llamaCppTargets } from "./build.js";

export type LlamaCppBinaries = Record<(typeof llamaCppTargets)[number], string>;

/** The binaries in --llama-cpp DIR, or an error naming the first one missing and how to build them. */
export function llamaCppBinaries(dir: string): LlamaCppBinaries {
  const how = "build them with `npm run bench -- build-llama-cpp`, which prints the directory";
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new InputError(`--llama-cpp ${dir}: no such directory (${how})`);
  const binaries = Object.fromEntries(llamaCppTargets.map((t) => [t, join(dir, t)])) as LlamaCppBinaries;
  for (const [name, path] of Object.entries(binaries))
    if (!existsSync(path)) throw new InputError(`--llama-cpp ${dir}: no ${name} there (${how})`);
  return binaries;
}

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "vitest";

/**
 * ../shared/models beside the repository: present in development and CI, absent in a user's clone. Only tests
 * whose expectation IS that data (golden outputs, the real vocabularies' pieces and ids) use it; everything
 * else runs on the bundled demo model or a synthetic one.
 */
export const sharedModelsDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "shared", "models");
export const hasSharedModels = existsSync(sharedModelsDir);

export const stories260K = {
  model: join(sharedModelsDir, "stories260K", "stories260K.bin"),
  tokenizer: join(sharedModelsDir, "stories260K", "tok512.bin"),
  golden: join(sharedModelsDir, "stories260K", "reference_outputs.json"),
};
export const llama2Tokenizer32k = join(sharedModelsDir, "tokenizers", "llama2c-sp32000", "tokenizer.bin");

/** What a suite needs from ../shared/models, as its skip notice names it. */
export const needs = {
  golden: "stories260K and its golden outputs",
  stories260K: "the stories260K checkpoint",
  tokenizers: "stories260K's tokenizer and golden ids, the 32k LLaMA-2 vocabulary",
  vocab32k: "the 32k LLaMA-2 vocabulary",
};

if (!hasSharedModels && process.env.VELLUM_REQUIRE_SHARED === "1") {
  throw new Error(`VELLUM_REQUIRE_SHARED=1 but ${sharedModelsDir} is missing`);
}

/** Prints why `name`, which needs `what` (one of `needs`), does not run here; returns that reason. */
export function warnSkipped(name: string, what: string): string {
  const why = `needs ../shared/models (${what}) — not found at ${sharedModelsDir}`;
  console.warn(`[skip] ${name}: ${why}`);
  return why;
}

/**
 * `describe` for suites that need ../shared/models; `what` says which data (one of `needs`). When it is absent
 * the suite is one skipped test, and a printed notice, saying what was skipped and why. Its body is not even
 * run then (a skipped suite's body still runs to collect its tests, and it may read the models).
 */
export const describeShared = (name: string, what: string, fn: () => void) => {
  if (hasSharedModels) return describe(name, fn);
  const why = warnSkipped(name, what);
  return describe.skip(name, () => {
    test(`skipped: ${why}`, () => {});
  });
};

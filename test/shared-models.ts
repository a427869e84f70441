import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "vitest";

/** ../shared/models beside the repository: present in development and CI, absent in a user's clone. */
export const sharedModelsDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "shared", "models");
export const hasSharedModels = existsSync(sharedModelsDir);

export const stories260K = {
  model: join(sharedModelsDir, "stories260K", "stories260K.bin"),
  tokenizer: join(sharedModelsDir, "stories260K", "tok512.bin"),
  golden: join(sharedModelsDir, "stories260K", "reference_outputs.json"),
};
export const llama2Tokenizer32k = join(sharedModelsDir, "tokenizers", "llama2c-sp32000", "tokenizer.bin");

if (!hasSharedModels && process.env.VELLUM_REQUIRE_SHARED === "1") {
  throw new Error(`VELLUM_REQUIRE_SHARED=1 but ${sharedModelsDir} is missing`);
}

/**
 * `describe` for suites that need ../shared/models: skipped with a printed notice when it is absent. The
 * suite's body is not even run then (a skipped suite's body still runs to collect its tests, and it may
 * read the models).
 */
export const describeShared = (name: string, fn: () => void) => {
  if (hasSharedModels) return describe(name, fn);
  console.warn(`[skip] ${name}: ${sharedModelsDir} not found`);
  return describe.skip(name, () => {
    test("needs ../shared/models", () => {});
  });
};

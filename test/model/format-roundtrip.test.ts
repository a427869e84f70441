import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { writeHfModel } from "../../src/model/formats/hf-model.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import { greedyIds } from "../helpers.js";

const prompts = ["In the beginning", "And God said, Let there be light: and there was light."];
const maxTokens = 40;

/** Each prompt's token ids and the greedy ids after it, on the reference backend. */
async function greedyOf(model: LoadedModel) {
  const out = [];
  for (const prompt of prompts) {
    const promptIds = model.tokenizer.encode(prompt);
    const backend = new ReferenceBackend(model);
    const ids = await greedyIds(
      backend,
      promptIds,
      maxTokens,
      model.tokenizer.stopIds,
      model.config.maxSeqLen,
    );
    out.push({ promptIds, ids });
  }
  return out;
}

describe("the bundled demo model in other formats tokenizes and generates as the original", () => {
  let dir: string;
  const original = loadModel(bundledModelPath);
  let expected: Awaited<ReturnType<typeof greedyOf>>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vellum-roundtrip-"));
    expected = await greedyOf(original);
    expect(expected.map((e) => e.ids.length)).toEqual([maxTokens, maxTokens]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("GGUF f32", async () => {
    const path = join(dir, "demo-f32.gguf");
    writeGgufModel(original, path, { dtype: "f32" });
    const model = loadModel(path);
    expect(model.format).toBe("gguf");
    expect(model.config).toEqual(original.config);
    expect(await greedyOf(model)).toEqual(expected);
  });

  test("Hugging Face directory (safetensors f32, rotate-half RoPE, tokenizer.json)", async () => {
    const hfDir = join(dir, "demo-hf");
    writeHfModel(original, hfDir, "f32");
    const model = loadModel(hfDir);
    expect(model.format).toBe("safetensors");
    expect(model.config.ropeStyle).toBe("neox");
    expect(await greedyOf(model)).toEqual(expected);
  });

  test("Hugging Face directory converted back to GGUF", async () => {
    const hfDir = join(dir, "demo-hf2");
    writeHfModel(original, hfDir, "f32");
    const path = join(dir, "from-hf.gguf");
    writeGgufModel(loadModel(hfDir), path, { dtype: "f32" });
    const model = loadModel(path);
    expect(model.config.ropeStyle).toBe("interleaved");
    expect(await greedyOf(model)).toEqual(expected);
  });
});

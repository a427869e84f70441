import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ReferenceBackend } from "../src/backend/reference/reference-backend.js";
import { writeGgufModel } from "../src/model/formats/gguf-model.js";
import { writeHfModel } from "../src/model/formats/hf-model.js";
import { loadModel } from "../src/model/load.js";
import type { LoadedModel } from "../src/model/model.js";
import { greedyIds } from "./helpers.js";
import { describeShared, stories260K } from "./shared-models.js";

interface GoldenCase {
  prompt_text: string;
  prompt_tokens: number[];
  generated_tokens_after_prompt?: number[];
}

describeShared("stories260K in other formats generates the golden ids", () => {
  let dir: string;
  let original: LoadedModel;
  let cases: GoldenCase[];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "vellum-roundtrip-"));
    original = loadModel(stories260K.model, { tokenizer: stories260K.tokenizer });
    cases = JSON.parse(readFileSync(stories260K.golden, "utf8")).cases.slice(1);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function expectGolden(model: LoadedModel) {
    for (const c of cases) {
      const promptIds = model.tokenizer.encode(c.prompt_text);
      expect(promptIds).toEqual(c.prompt_tokens);
      const expected = c.generated_tokens_after_prompt ?? [];
      const ids = await greedyIds(
        new ReferenceBackend(model),
        promptIds,
        expected.length,
        model.tokenizer.stopIds,
        512,
      );
      expect(ids, c.prompt_text).toEqual(expected);
    }
  }

  test("GGUF f32", async () => {
    const path = join(dir, "stories260K.gguf");
    writeGgufModel(original, path, { dtype: "f32" });
    const model = loadModel(path);
    expect(model.format).toBe("gguf");
    expect(model.config).toEqual(original.config);
    await expectGolden(model);
  });

  test("Hugging Face directory (safetensors f32, rotate-half RoPE, tokenizer.json)", async () => {
    const hfDir = join(dir, "stories260K-hf");
    writeHfModel(original, hfDir, "f32");
    const model = loadModel(hfDir);
    expect(model.format).toBe("safetensors");
    expect(model.config.ropeStyle).toBe("neox");
    await expectGolden(model);
  });

  test("Hugging Face directory converted back to GGUF", async () => {
    const hfDir = join(dir, "stories260K-hf2");
    writeHfModel(original, hfDir, "f32");
    const path = join(dir, "from-hf.gguf");
    writeGgufModel(loadModel(hfDir), path, { dtype: "f32" });
    const model = loadModel(path);
    expect(model.config.ropeStyle).toBe("interleaved");
    await expectGolden(model);
  });
});

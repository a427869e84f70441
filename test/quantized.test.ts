import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ReferenceBackend } from "../src/backend/reference/reference-backend.js";
import { writeGgufModel } from "../src/model/formats/gguf-model.js";
import { loadModel } from "../src/model/load.js";
import type { LoadedModel } from "../src/model/model.js";
import type { DType } from "../src/model/tensor.js";
import { logitsAt } from "./helpers.js";
import { describeShared, stories260K } from "./shared-models.js";

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

describeShared("quantized stories260K agrees with f32, teacher-forced on the golden sequence", () => {
  let dir: string;
  let f32: LoadedModel;
  let sequence: number[];
  let f32Top1: number[];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vellum-quant-"));
    f32 = loadModel(stories260K.model, { tokenizer: stories260K.tokenizer });
    const golden = JSON.parse(readFileSync(stories260K.golden, "utf8")).cases[0];
    sequence = [...golden.prompt_tokens, ...golden.generated_tokens];
    const logits = await logitsAt(new ReferenceBackend(f32), sequence, f32.config.vocabSize);
    f32Top1 = logits.map(argmax);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each([
    ["q8_0", 0.95],
    ["q4_0", 0.85],
  ] as [DType, number][])("%s top-1 agreement ≥ %d", async (dtype, threshold) => {
    const path = join(dir, `stories-${dtype}.gguf`);
    writeGgufModel(f32, path, { dtype });
    const quantized = loadModel(path);
    expect(quantized.tensors.get("blk.0.attn_q.weight")?.dtype).toBe(dtype);
    const logits = await logitsAt(new ReferenceBackend(quantized), sequence, f32.config.vocabSize);
    const agree = logits.filter((row, i) => argmax(row) === f32Top1[i]).length / logits.length;
    console.log(
      `${dtype}: top-1 agreement with f32 over ${logits.length} positions: ${(agree * 100).toFixed(1)}%`,
    );
    expect(agree).toBeGreaterThanOrEqual(threshold);
  });
});

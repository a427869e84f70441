import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { loadModel } from "../../src/model/load.js";
import type { DType } from "../../src/model/tensor.js";
import { logitsAt } from "../helpers.js";
import { genesis } from "../kjv-prompts.js";

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

describe("the quantized demo model agrees with the original (f16), teacher-forced on Genesis 1", () => {
  let dir: string;
  const original = loadModel(bundledModelPath);
  const sequence = original.tokenizer.encode(genesis);
  let originalTop1: number[];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vellum-quant-"));
    const logits = await logitsAt(new ReferenceBackend(original), sequence, original.config.vocabSize);
    originalTop1 = logits.map(argmax);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each([
    ["q8_0", 0.95],
    ["q4_0", 0.85],
  ] as [DType, number][])("%s top-1 agreement ≥ %d", async (dtype, threshold) => {
    const path = join(dir, `demo-${dtype}.gguf`);
    writeGgufModel(original, path, { dtype });
    const quantized = loadModel(path);
    expect(quantized.tensors.get("blk.0.attn_q.weight")?.dtype).toBe(dtype);
    const logits = await logitsAt(new ReferenceBackend(quantized), sequence, original.config.vocabSize);
    const agree = logits.filter((row, i) => argmax(row) === originalTop1[i]).length / logits.length;
    console.log(
      `${dtype}: top-1 agreement with the original over ${logits.length} positions: ${(agree * 100).toFixed(1)}%`,
    );
    expect(agree).toBeGreaterThanOrEqual(threshold);
  });
});

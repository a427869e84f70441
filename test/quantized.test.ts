import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ReferenceBackend } from "../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../src/cli/default-model.js";
import { writeGgufModel } from "../src/model/formats/gguf-model.js";
import { loadModel } from "../src/model/load.js";
import type { DType } from "../src/model/tensor.js";
import { logitsAt } from "./helpers.js";

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Genesis 1:1–8: text of the kind the demo model was trained on (Genesis is in its training split). */
const genesis =
  "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness " +
  "was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there " +
  "be light: and there was light. And God saw the light, that it was good: and God divided the light from the " +
  "darkness. And God called the light Day, and the darkness he called Night. And the evening and the morning were " +
  "the first day. And God said, Let there be a firmament in the midst of the waters, and let it divide the waters " +
  "from the waters. And God made the firmament, and divided the waters which were under the firmament from the " +
  "waters which were above the firmament: and it was so. And God called the firmament Heaven. And the evening and " +
  "the morning were the second day.";

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

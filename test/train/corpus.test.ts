import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { InputError } from "../../src/model/errors.js";
import { parseBibleText, splitBooks } from "../../src/train/corpus.js";
import { readTrainConfig } from "../../src/train/train-config.js";

// The layout of `bible -l100000 gen1:1-rev22:21` (Debian bible-kjv), shortened.
const sample = `
Genesis 1

  1 In the beginning God created the heaven and the earth.
  2 And the earth was without form, and void.

Genesis 2

  1 Thus the heavens and the earth were finished.

1 Samuel 1

  1 Now there was a certain man of Ramathaimzophim.

Revelation 22

  21 The grace of our Lord Jesus Christ be with you all. Amen.
`;

test("parses books and verses from bible-kjv's output; chapters of a book join", () => {
  const books = parseBibleText(sample, "sample");
  expect(books.map((b) => b.name)).toEqual(["Genesis", "1 Samuel", "Revelation"]);
  expect(books[0].verses).toEqual([
    "In the beginning God created the heaven and the earth.",
    "And the earth was without form, and void.",
    "Thus the heavens and the earth were finished.",
  ]);
});

test("holds out the last whole books as validation", () => {
  const books = parseBibleText(sample, "sample");
  const { train, validation } = splitBooks(books, 0.05);
  expect(validation.map((b) => b.name)).toEqual(["Revelation"]); // ⌈3 · 0.05⌉ = 1
  expect(train.map((b) => b.name)).toEqual(["Genesis", "1 Samuel"]);
  expect(splitBooks(books, 0.5).validation.map((b) => b.name)).toEqual(["1 Samuel", "Revelation"]);
  expect(() => splitBooks(books, 0.9)).toThrow(InputError);
});

test("text that is not bible-kjv's output is an InputError naming the line", () => {
  expect(() => parseBibleText("  1 a verse first", "x.txt")).toThrow(
    /x.txt: line 1: a verse before any chapter header/,
  );
  expect(() => parseBibleText("Genesis 1\nhello there", "x.txt")).toThrow(/x.txt: line 2: neither/);
  expect(() => parseBibleText("\n\n", "x.txt")).toThrow(/x.txt: no verses found/);
});

const dir = mkdtempSync(join(tmpdir(), "vellum-train-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the bundled training config is valid", () => {
  const cfg = readTrainConfig("train/kjv-demo.json");
  expect(cfg.output).toBe("models/kjv-demo/kjv-demo.gguf");
  expect(cfg.model.dim % cfg.model.nHeads).toBe(0);
});

test("a bad training config is an InputError naming the file and the key", () => {
  type Editable = { model: Record<string, unknown>; optimizer: Record<string, unknown>; dtype: unknown };
  const good: Editable = JSON.parse(JSON.stringify(readTrainConfig("train/kjv-demo.json")));
  const write = (edit: (c: Editable) => void) => {
    const c = structuredClone(good);
    edit(c);
    const path = join(dir, "c.json");
    writeFileSync(path, JSON.stringify(c));
    return () => readTrainConfig(path);
  };
  expect(write((c) => delete c.model.dim)).toThrow(/c.json: "model.dim" is missing/);
  expect(write((c) => (c.optimizer.steps = 1.5))).toThrow(/"optimizer.steps" must be an integer/);
  expect(write((c) => (c.model.nKvHeads = 4))).toThrow(/"model.nKvHeads" \(4\) must divide/);
  expect(write((c) => (c.dtype = "q4_0"))).toThrow(/"dtype" must be "f32" or "f16"/);
  writeFileSync(join(dir, "bad.json"), "{ not json");
  expect(() => readTrainConfig(join(dir, "bad.json"))).toThrow(/bad.json: cannot read the training config/);
});

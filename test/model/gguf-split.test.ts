/**
 * Split GGUF files (llama.cpp's gguf-split format): what vellum writes, how it finds and checks the shards, and the
 * clear errors for a broken set. Generation from split files, and llama.cpp reading them, are in
 * test/backend/gguf-split.test.ts.
 */
import { mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { tensorBytes } from "../../src/model/dtype.js";
import { loadGgufModel, writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { type GgufValue, readGgufFile, readGgufTensor } from "../../src/model/formats/gguf-reader.js";
import {
  ggufShardPath,
  ggufShardPaths,
  parseSplitSize,
  planShards,
} from "../../src/model/formats/gguf-split.js";
import { writeGgufFile } from "../../src/model/formats/gguf-writer.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import type { DType } from "../../src/model/tensor.js";
import { expectInputError } from "../helpers.js";

let dir: string;
let source: LoadedModel;
let whole: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vellum-gguf-split-"));
  source = loadModel(bundledModelPath);
  whole = join(dir, "whole.gguf");
  writeGgufModel(source, whole, { dtype: "q8_0" });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes the bundled model as q8_0 shards under dir/name/; returns their paths. */
function writeSplit(name: string, split: { maxTensors: number } | { maxBytes: number }): string[] {
  return writeGgufModel(source, join(dir, `${name}.gguf`), { dtype: "q8_0", split });
}

/** Rewrites a GGUF file with its metadata and tensors changed by `edit` (tensor data copied as is). */
function rewrite(
  path: string,
  edit: (metadata: Map<string, GgufValue>, names: string[]) => string[] | undefined,
): void {
  const file = readGgufFile(path);
  const names =
    edit(
      file.metadata,
      file.tensors.map((t) => t.name),
    ) ?? file.tensors.map((t) => t.name);
  const tensors = file.tensors
    .filter((t) => names.includes(t.name))
    .map((t) => {
      const data = readGgufTensor(file, t).data; // read before the file is rewritten
      return { name: t.name, dtype: t.dtype, shape: t.shape, data: () => data };
    });
  writeGgufFile(path, file.metadata, tensors);
}

/** Byte-equal (toEqual on megabytes of bytes is slow). */
function expectSameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined, name: string): void {
  expect(a && b && Buffer.compare(a, b) === 0, name).toBe(true);
}

const splitKeys = ["split.no", "split.count", "split.tensors.count"];

describe("writing", () => {
  test("shards are llama.cpp's names and keys: all metadata in the first, the tensors in order, split.* in each", () => {
    const paths = writeSplit("by-count", { maxTensors: 20 });
    const unsplit = readGgufFile(whole);
    const n = unsplit.tensors.length;
    const count = Math.ceil(n / 20);
    expect(paths).toEqual(
      Array.from({ length: count }, (_, i) => join(dir, `by-count-0000${i + 1}-of-0000${count}.gguf`)),
    );
    const shards = paths.map((p) => readGgufFile(p));
    expect(shards.flatMap((s) => s.tensors.map((t) => t.name))).toEqual(unsplit.tensors.map((t) => t.name));
    shards.forEach((shard, no) => {
      expect(shard.tensors).toHaveLength(Math.min(20, n - 20 * no));
      expect(shard.metadata.get("split.no")).toEqual({ type: "uint16", value: no });
      expect(shard.metadata.get("split.count")).toEqual({ type: "uint16", value: count });
      expect(shard.metadata.get("split.tensors.count")).toEqual({ type: "int32", value: n });
      const keys = [...shard.metadata.keys()];
      expect(keys).toEqual(no === 0 ? [...unsplit.metadata.keys(), ...splitKeys] : splitKeys);
    });
    for (const [key, value] of unsplit.metadata) expect(shards[0].metadata.get(key)).toEqual(value);
    // The same bytes for every tensor.
    const byName = new Map(unsplit.tensors.map((t) => [t.name, t]));
    for (const shard of shards) {
      for (const t of shard.tensors) {
        const original = byName.get(t.name);
        if (!original) throw new Error(t.name);
        expectSameBytes(readGgufTensor(shard, t).data, readGgufTensor(unsplit, original).data, t.name);
      }
    }
  });

  test("--split-max-size: each shard holds at most that many bytes of tensors (padded to 32), as many as fit", () => {
    const maxBytes = 600_000;
    const shards = writeSplit("by-size", { maxBytes }).map((p) => readGgufFile(p));
    expect(shards.length).toBeGreaterThan(2);
    const padded = (t: { dtype: DType; shape: number[] }) =>
      Math.ceil(tensorBytes(t.dtype, t.shape) / 32) * 32;
    shards.forEach((shard, i) => {
      const bytes = shard.tensors.reduce((sum, t) => sum + padded(t), 0);
      expect(bytes).toBeLessThanOrEqual(maxBytes);
      const next = shards[i + 1]?.tensors[0];
      if (next) expect(bytes + padded(next)).toBeGreaterThan(maxBytes);
    });
  });

  test("planShards: the tensors in order, never an empty shard, each shard full before the next (property)", () => {
    const tensor = fc.record({
      dtype: fc.constant<DType>("f32"),
      shape: fc.tuple(fc.integer({ min: 1, max: 300 })),
    });
    fc.assert(
      fc.property(
        fc.array(tensor, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 2000 }),
        (ts, max) => {
          const size = (t: (typeof ts)[number]) => Math.ceil((4 * t.shape[0]) / 32) * 32;
          const bySize = planShards(ts, { maxBytes: max });
          expect(bySize.flat()).toEqual(ts);
          bySize.forEach((shard, i) => {
            expect(shard.length).toBeGreaterThan(0);
            const bytes = shard.reduce((sum, t) => sum + size(t), 0);
            if (shard.length > 1) expect(bytes).toBeLessThanOrEqual(max);
            if (i + 1 < bySize.length) expect(bytes + size(bySize[i + 1][0])).toBeGreaterThan(max);
          });
          const maxTensors = 1 + (max % 7);
          const byCount = planShards(ts, { maxTensors });
          expect(byCount.flat()).toEqual(ts);
          expect(byCount.map((s) => s.length)).toEqual(
            Array.from({ length: Math.ceil(ts.length / maxTensors) }, (_, i) =>
              Math.min(maxTensors, ts.length - i * maxTensors),
            ),
          );
        },
      ),
    );
  });

  test("split sizes are llama-gguf-split's: N then M (10^6 bytes) or G (10^9)", () => {
    expect(parseSplitSize("50M")).toBe(50_000_000);
    expect(parseSplitSize("2G")).toBe(2_000_000_000);
    for (const bad of ["", "0M", "-5M", "2K", "1.5G", "2GB", "G", " 2G"])
      expectInputError(() => parseSplitSize(bad), bad);
  });
});

describe("loading", () => {
  test("any shard loads the whole model: the same tensors, config and vocabulary as the unsplit file", () => {
    const paths = writeSplit("any", { maxTensors: 16 });
    const unsplit = loadGgufModel(whole);
    for (const path of paths) {
      const model = loadGgufModel(path);
      expect(model.path).toBe(paths[0]);
      expect(model.config).toEqual(unsplit.config);
      expect(model.vocab).toEqual(unsplit.vocab);
      expect([...model.tensors.keys()]).toEqual([...unsplit.tensors.keys()]);
      for (const [name, t] of model.tensors) {
        expectSameBytes(t.data, unsplit.tensors.get(name)?.data, name);
        expect(paths).toContain(t.file?.path);
      }
    }
  });

  test("ggufShardPaths lists the set from any shard's name; other names are a set of one", () => {
    const all = [1, 2, 3].map((i) => `/m/x-0000${i}-of-00003.gguf`);
    for (const path of all) expect(ggufShardPaths(path)).toEqual(all);
    expect(ggufShardPath("/m/x", 1, 3)).toBe(all[1]);
    for (const path of [
      "/m/x.gguf",
      "/m/x-00004-of-00003.gguf",
      "/m/x-00000-of-00003.gguf",
      "/m/x-1-of-3.gguf",
    ]) {
      expect(ggufShardPaths(path)).toEqual([path]);
    }
  });

  test("a split of one shard (-00001-of-00001) loads", () => {
    const [path] = writeSplit("one", { maxTensors: 1000 });
    expect(path).toBe(join(dir, "one-00001-of-00001.gguf"));
    expect([...loadGgufModel(path).tensors.keys()]).toEqual([...loadGgufModel(whole).tensors.keys()]);
  });
});

describe("a broken split set is an InputError naming the file", () => {
  test("a missing shard", () => {
    const paths = writeSplit("missing", { maxTensors: 20 });
    rmSync(paths[1]);
    for (const given of [paths[0], paths[2]]) {
      expectInputError(() => loadGgufModel(given), paths[1], "shard 2 of 3", "missing");
    }
  });

  test("a shard whose split.no is not its place", () => {
    const paths = writeSplit("wrong-no", { maxTensors: 20 });
    rewrite(paths[2], (m) => void m.set("split.no", { type: "uint16", value: 1 }));
    expectInputError(() => loadGgufModel(paths[0]), paths[2], "shard 2 of 3", "shard 3 of a set of 3");
  });

  test("a shard whose split.count differs", () => {
    const paths = writeSplit("wrong-count", { maxTensors: 20 });
    rewrite(paths[1], (m) => void m.set("split.count", { type: "uint16", value: 4 }));
    expectInputError(() => loadGgufModel(paths[0]), paths[1], "shard 2 of 4", "shard 2 of a set of 3");
  });

  test("tensors that do not add up to split.tensors.count", () => {
    const paths = writeSplit("short", { maxTensors: 20 });
    rewrite(paths[2], (_, names) => names.slice(1));
    const n = readGgufFile(whole).tensors.length;
    expectInputError(
      () => loadGgufModel(paths[0]),
      paths[0],
      `"split.tensors.count" is ${n}`,
      `hold ${n - 1} tensors`,
    );
  });

  test("a shard renamed away from llama.cpp's name", () => {
    const paths = writeSplit("renamed", { maxTensors: 20 });
    const renamed = join(dir, "renamed.gguf");
    renameSync(paths[0], renamed);
    expectInputError(() => loadGgufModel(renamed), renamed, "shard 1 of 3", "-00001-of-00003.gguf");
  });

  test("split keys that name no shard", () => {
    const [path] = writeSplit("bad-no", { maxTensors: 20 });
    rewrite(path, (m) => void m.set("split.no", { type: "uint16", value: 7 }));
    expectInputError(() => loadGgufModel(path), path, '"split.no" (7)', '"split.count" (3)');
  });
});

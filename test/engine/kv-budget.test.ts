import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { NativeBackend } from "../../src/backend/native/native-backend.js";
import { kvCacheGroups } from "../../src/core/kv-cache-groups.js";
import { kvBytesPerToken } from "../../src/core/kv-cache-sizing.js";
import { createEngine, kvCacheSummary } from "../../src/engine/create-engine.js";
import { cgroupMemory } from "../../src/engine/memory-view.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { readGgufFile } from "../../src/model/formats/gguf-reader.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import { shapeConfig } from "../../src/model/profiles.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { formatBytes } from "../../src/util/byte-size.js";

const MiB = 2 ** 20;

describe("the cgroup's memory limit, as /proc/self/cgroup and /sys/fs/cgroup give it", () => {
  /** A fake file system: path → text. */
  const files = (entries: Record<string, string>) => (path: string) => entries[path];
  const stat = (inactive: number, key = "inactive_file") =>
    `anon 1000\nfile 9000\nactive_file 4000\n${key} ${inactive}\nunevictable 0\n`;

  test("cgroup v2: memory.max, memory.current less the inactive page cache", () => {
    const read = files({
      "/sys/fs/cgroup/kubepods/pod1/memory.max": "8589934592\n",
      "/sys/fs/cgroup/kubepods/pod1/memory.current": "3221225472\n",
      "/sys/fs/cgroup/kubepods/pod1/memory.stat": stat(1073741824),
    });
    expect(cgroupMemory("0::/kubepods/pod1\n", "/sys/fs/cgroup", read)).toEqual({
      limitBytes: 8 * 2 ** 30,
      usedBytes: 2 * 2 ** 30,
    });
  });

  test("cgroup v2 inside a container's own namespace: the root of /sys/fs/cgroup", () => {
    const read = files({
      "/sys/fs/cgroup/memory.max": "1073741824",
      "/sys/fs/cgroup/memory.current": "104857600",
      "/sys/fs/cgroup/memory.stat": stat(0),
    });
    expect(cgroupMemory("0::/\n", "/sys/fs/cgroup", read)).toEqual({
      limitBytes: 2 ** 30,
      usedBytes: 100 * MiB,
    });
  });

  test("no limit (max), unreadable files, no cgroup at all: none", () => {
    const unlimited = files({ "/sys/fs/cgroup/memory.max": "max\n", "/sys/fs/cgroup/memory.current": "5" });
    expect(cgroupMemory("0::/\n", "/sys/fs/cgroup", unlimited)).toBeUndefined();
    expect(cgroupMemory("0::/\n", "/sys/fs/cgroup", files({}))).toBeUndefined();
    expect(cgroupMemory("", "/sys/fs/cgroup", files({}))).toBeUndefined();
  });

  test("cgroup v1 (and hybrid systems): the memory controller's limit_in_bytes and usage_in_bytes", () => {
    const read = files({
      "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "4294967296\n",
      "/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": "2147483648\n",
      "/sys/fs/cgroup/memory/docker/abc/memory.stat": stat(536870912, "total_inactive_file"),
    });
    const procSelfCgroup = "12:pids:/docker/abc\n5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n";
    expect(cgroupMemory(procSelfCgroup, "/sys/fs/cgroup", read)).toEqual({
      limitBytes: 4 * 2 ** 30,
      usedBytes: 1.5 * 2 ** 30,
    });
  });
});

test("the KV cache in one line: dtype, blocks, layers per block, total, one sequence, max concurrency", () => {
  // 771 blocks × 16 tokens × 32 KiB = 385.5 MiB; a sequence of 512 tokens takes 32 blocks = 16 MiB; 770 / 32 = 24.1
  const groups = kvCacheGroups(new Array(26).fill(0), true);
  expect(
    kvCacheSummary({
      dtype: "f16",
      numBlocks: 771,
      blockSize: 16,
      blockBytes: 16 * 32 * 1024,
      groups,
      maxModelLen: 512,
      blocksPerSequence: 32,
    }),
  ).toBe(
    "KV cache (f16): 771 blocks of 16 tokens × 26 layers = 385.5 MiB; per sequence at maxModelLen 512: 32 blocks = 16.0 MiB; max concurrency 24.1x",
  );
});

test("with sliding-window layers, the line names the groups and what keeping every block would take", () => {
  // Gemma 3 1B's layers: 4 full, 22 window 512 → 13 groups of 2; 4096 tokens: 256 blocks in each full group,
  // ⌈(511 + 2048) / 16⌉ + 1 = 161 in each window group; every block kept: 256 × 13
  const groups = kvCacheGroups(shapeConfig("gemma-3-1b").layerWindows, true);
  const blockBytes = 16 * 2 * 2 * 256 * 2; // 16 tokens × K and V × 2 layers × 256 wide × f16
  expect(
    kvCacheSummary({
      dtype: "f16",
      numBlocks: 3001,
      blockSize: 16,
      blockBytes,
      groups,
      maxModelLen: 4096,
      blocksPerSequence: 2 * 256 + 11 * 161,
    }),
  ).toBe(
    "KV cache (f16): 3,001 blocks of 16 tokens × 2 layers = 93.8 MiB; 13 groups of 2 layers: 2 full attention, 11 window 512; " +
      "per sequence at maxModelLen 4096: 2,283 blocks = 71.3 MiB (every block kept: 104.0 MiB); max concurrency 1.3x",
  );
});

test("the reference backend copies every weight at load: the budget is a share of free memory", async () => {
  const model = syntheticModel("tiny-test", "q8_0");
  const blockBytes = 16 * kvBytesPerToken(model.config, "f32");
  const freeBytes = 40 * blockBytes;
  const { engine, summary } = await createEngine(model, {
    backend: "reference",
    maxNumSeqs: 64,
    memory: { freeBytes },
  });
  expect(engine.core.config.numBlocks).toBe(Math.floor(Math.floor(0.3 * freeBytes) / blockBytes));
  expect(summary).toContain(`KV budget 30% of (${formatBytes(freeBytes)} free − 0 B of mapped weights)`);
});

const addon = loadNativeAddon();

describe.skipIf(addon instanceof Error)("the default KV budget of a memory-mapped GGUF model", () => {
  let dir: string;
  let path: string;
  let model: LoadedModel;
  /** Bytes of the file's 2-D tensors (embedding, classifier, matrices): what a backend reading them in place maps. */
  let matrixBytes: number;
  let embeddingBytes: number;
  const blockBytes = 16 * kvBytesPerToken(syntheticModel("tiny-test", "q8_0").config, "f32");

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "vellum-kv-budget-"));
    path = join(dir, "tiny-q8_0.gguf");
    writeGgufModel(syntheticModel("tiny-test", "q8_0", 5), path, { dtype: "q8_0" });
    model = loadModel(path);
    const tensors = readGgufFile(path).tensors;
    matrixBytes = tensors.filter((t) => t.shape.length === 2).reduce((sum, t) => sum + t.byteLength, 0);
    embeddingBytes = tensors.find((t) => t.name === "token_embd.weight")?.byteLength ?? Number.NaN;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("the backend reports the weights it reads in place: all of them without interleaved copies", async () => {
    const scalar = await NativeBackend.load(model, { threads: 1, kernels: "scalar" });
    expect(scalar.weightSource).toBe("mapped");
    expect(scalar.mappedWeightBytes).toBe(matrixBytes);
    // The SIMD paths read q8_0 matrices (rows in groups of 8) from copies made at load; the embedding stays mapped.
    const simd = await NativeBackend.load(model, { threads: 1 });
    if (simd.kernelPath !== "scalar") expect(simd.mappedWeightBytes).toBe(embeddingBytes);
    // Weights in the loader's buffers are resident already.
    const fromBuffers = await NativeBackend.load(syntheticModel("tiny-test", "q8_0"), { threads: 1 });
    expect(fromBuffers.mappedWeightBytes).toBe(0);
  });

  test("fraction × (free − mapped weights), and the startup line says so", async () => {
    const backend = await NativeBackend.load(model, { threads: 1, kernels: "scalar" });
    const freeBytes = matrixBytes + 100 * blockBytes;
    const { engine, summary } = await createEngine(model, { backend, maxNumSeqs: 64, memory: { freeBytes } });
    expect(engine.core.config.numBlocks).toBe(
      Math.floor(Math.floor(0.3 * (freeBytes - matrixBytes)) / blockBytes),
    );
    expect(summary).toContain(
      `; KV budget 30% of (${formatBytes(freeBytes)} free − ${formatBytes(matrixBytes)} of mapped weights); backend native`,
    );
  });

  test("under a cgroup limit lower than free memory, the limit decides", async () => {
    const backend = await NativeBackend.load(model, { threads: 1, kernels: "scalar" });
    const cgroup = { limitBytes: 64 * MiB, usedBytes: 64 * MiB - matrixBytes - 50 * blockBytes };
    const { engine, summary } = await createEngine(model, {
      backend,
      maxNumSeqs: 64,
      memory: { freeBytes: 16 * 2 ** 30, cgroup },
    });
    expect(engine.core.config.numBlocks).toBe(Math.floor(Math.floor(0.3 * 50 * blockBytes) / blockBytes));
    expect(summary).toContain("left under the cgroup limit of 64.0 MiB");
  });

  test("a model whose mapped weights exceed the memory left is refused with a clear error", async () => {
    const backend = await NativeBackend.load(model, { threads: 1, kernels: "scalar" });
    await expect(createEngine(model, { backend, memory: { freeBytes: matrixBytes - 1 } })).rejects.toThrow(
      /^no memory left for the KV cache: .* free, and the model's memory-mapped weights need .*--kv-cache-memory/,
    );
    // A budget given explicitly is the user's call.
    const given = await createEngine(model, {
      backend,
      kvCacheMemory: 10 * blockBytes,
      memory: { freeBytes: 1 },
    });
    expect(given.summary).toContain(`; KV budget ${formatBytes(10 * blockBytes)} as given;`);
  });
});

import { describe, expect, it } from "vitest";
import {
  defaultKvBudget,
  kvBytesPerBlock,
  kvBytesPerToken,
  numBlocksForBudget,
} from "../../src/core/kv-cache-sizing.js";

const llama2_7b = { nLayers: 32, nKvHeads: 32, headDim: 128 };
const stories260K = { nLayers: 5, nKvHeads: 4, headDim: 8 };

describe("KV cache sizing", () => {
  it("bytes per token = 2 × layers × kvHeads × headDim × bytes per element", () => {
    expect(kvBytesPerToken(llama2_7b, "f16")).toBe(512 * 1024); // the 0.5 MB/token
    expect(kvBytesPerToken(llama2_7b, "f32")).toBe(1024 * 1024);
    expect(kvBytesPerToken(stories260K, "f32")).toBe(2 * 5 * 4 * 8 * 4);
  });

  it("a block holds blockSize tokens of the layers a KV cache group has", () => {
    expect(kvBytesPerBlock(llama2_7b, 32, 16, "f16")).toBe(16 * 512 * 1024);
    // Gemma 3 1B: 1 KV head of 256, groups of 2 layers
    expect(kvBytesPerBlock({ nLayers: 26, nKvHeads: 1, headDim: 256 }, 2, 16, "f16")).toBe(
      16 * 2 * 2 * 256 * 2,
    );
  });

  it("counts whole blocks in a budget, and needs two (one is the null block)", () => {
    const blockBytes = 16 * 512 * 1024;
    expect(numBlocksForBudget(2 ** 30, blockBytes, 16)).toBe(128);
    expect(numBlocksForBudget(2 ** 30 - 1, blockBytes, 16)).toBe(127);
    expect(numBlocksForBudget(16 * 2 ** 20, blockBytes, 16)).toBe(2);
    expect(() => numBlocksForBudget(12 * 2 ** 20, blockBytes, 16)).toThrow(
      /12.0 MiB is too small: one block of 16 tokens takes 8.0 MiB, and the cache needs two/,
    );
  });

  describe("the default budget: a fraction of the memory left once the mapped weights are resident", () => {
    const GiB = 2 ** 30;

    it("free memory less the mapped weights, times the fraction", () => {
      expect(defaultKvBudget({ freeBytes: 10 * GiB }, 2 * GiB, 0.5)).toEqual({
        bytes: 4 * GiB,
        derivation: "50% of (10.0 GiB free − 2.0 GiB of mapped weights)",
      });
      // Weights the backend copied are out of the free figure already: nothing more to subtract.
      expect(defaultKvBudget({ freeBytes: 10 * GiB }, 0, 0.3).bytes).toBe(Math.floor(0.3 * 10 * GiB));
    });

    it("a cgroup limit lower than free memory bounds it, whatever the cgroup holds counted", () => {
      const memory = { freeBytes: 20 * GiB, cgroup: { limitBytes: 8 * GiB, usedBytes: 2 * GiB } };
      expect(defaultKvBudget(memory, 1 * GiB, 0.5)).toEqual({
        bytes: 2.5 * GiB,
        derivation: "50% of (6.0 GiB left under the cgroup limit of 8.0 GiB − 1.0 GiB of mapped weights)",
      });
      // A limit far above free memory (cgroup v1's "unlimited" is 2^63 − 4096) changes nothing.
      const unlimited = { freeBytes: 10 * GiB, cgroup: { limitBytes: 2 ** 63 - 4096, usedBytes: 3 * GiB } };
      expect(defaultKvBudget(unlimited, 2 * GiB, 0.5)).toEqual(
        defaultKvBudget({ freeBytes: 10 * GiB }, 2 * GiB, 0.5),
      );
    });

    it("weights larger than the memory left are a clear error, not a budget the machine cannot hold", () => {
      expect(() => defaultKvBudget({ freeBytes: 4 * GiB }, 6 * GiB, 0.3)).toThrow(
        new RangeError(
          "no memory left for the KV cache: 4.0 GiB free, and the model's memory-mapped weights need 6.0 GiB; " +
            "set the budget with --kv-cache-memory if you know better",
        ),
      );
      const full = { freeBytes: 64 * GiB, cgroup: { limitBytes: 4 * GiB, usedBytes: 5 * GiB } };
      expect(() => defaultKvBudget(full, 0, 0.3)).toThrow(/0 B left under the cgroup limit of 4.0 GiB/);
      expect(() => defaultKvBudget({ freeBytes: 10 * GiB }, 2 * GiB, 1.5)).toThrow(/fraction 1.5/);
    });
  });
});

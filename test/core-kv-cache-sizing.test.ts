import { describe, expect, it } from "vitest";
import {
  formatBytes,
  kvBudgetFromFreeMemory,
  kvBytesPerToken,
  kvCacheSummary,
  numBlocksForBudget,
  parseByteSize,
} from "../src/core/kv-cache-sizing.js";

const llama2_7b = { nLayers: 32, nKvHeads: 32, headDim: 128 };
const stories260K = { nLayers: 5, nKvHeads: 4, headDim: 8 };

describe("KV cache sizing", () => {
  it("bytes per token = 2 × layers × kvHeads × headDim × bytes per element", () => {
    expect(kvBytesPerToken(llama2_7b, "f16")).toBe(512 * 1024); // the 0.5 MB/token
    expect(kvBytesPerToken(llama2_7b, "f32")).toBe(1024 * 1024);
    expect(kvBytesPerToken(stories260K, "f32")).toBe(2 * 5 * 4 * 8 * 4);
  });

  it("parses byte sizes with decimal and binary units", () => {
    expect(parseByteSize("4GiB")).toBe(4 * 2 ** 30);
    expect(parseByteSize("512MiB")).toBe(512 * 2 ** 20);
    expect(parseByteSize("1.5GB")).toBe(1.5e9);
    expect(parseByteSize(" 2 kib ")).toBe(2048);
    expect(parseByteSize("1073741824")).toBe(2 ** 30);
    expect(parseByteSize("100B")).toBe(100);
  });

  it("rejects bad sizes, naming the value", () => {
    for (const bad of ["", "GiB", "4 GiBs", "-1GiB", "4,5GB", "1e9", "0", "0.1B"]) {
      expect(() => parseByteSize(bad)).toThrow(`"${bad}"`);
    }
  });

  it("counts whole blocks in a budget, and needs at least two", () => {
    expect(numBlocksForBudget(2 ** 30, 512 * 1024, 16)).toBe(128);
    expect(numBlocksForBudget(2 ** 30 - 1, 512 * 1024, 16)).toBe(127);
    expect(() => numBlocksForBudget(8 * 2 ** 20, 512 * 1024, 16)).toThrow(
      /8.0 MiB is too small: one block of 16 tokens takes 8.0 MiB/,
    );
  });

  it("takes a fraction of the memory left after the weights", () => {
    expect(kvBudgetFromFreeMemory(10e9, 2e9, 0.5)).toBe(4e9);
    expect(() => kvBudgetFromFreeMemory(1e9, 2e9, 0.9)).toThrow(/no memory left for the KV cache/);
    expect(() => kvBudgetFromFreeMemory(10e9, 2e9, 1.5)).toThrow(/fraction 1.5/);
  });

  it("summarizes in one line: dtype, tokens, blocks, bytes per token, total, max concurrency", () => {
    // 772 blocks: 771 usable × 16 = 12,336 tokens; 772 × 16 × 32 KiB = 386.0 MiB; 771 / (512 / 16) = 24.1
    expect(
      kvCacheSummary({
        dtype: "f16",
        numBlocks: 772,
        blockSize: 16,
        bytesPerToken: 32 * 1024,
        maxModelLen: 512,
      }),
    ).toBe(
      "KV cache (f16): 12,336 tokens (771 blocks of 16), 32.0 KiB/token, 386.0 MiB; max concurrency 24.1x at maxModelLen 512",
    );
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1280)).toBe("1.3 KiB");
    expect(formatBytes(1.5 * 2 ** 40)).toBe("1.5 TiB");
  });
});

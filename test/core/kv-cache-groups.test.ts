import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { kvCacheGroups, layersPerBlock, maxBlocksPerRequest } from "../../src/core/kv-cache-groups.js";
import { shapeConfig } from "../../src/model/profiles.js";

describe("KV cache groups", () => {
  it("Gemma 3 1B's 4 full and 22 window layers make 13 groups of 2, full attention first", () => {
    const groups = kvCacheGroups(shapeConfig("gemma-3-1b").layerWindows, true);
    expect(groups).toHaveLength(13);
    expect(layersPerBlock(groups)).toBe(2);
    expect(groups.map((g) => g.window)).toEqual([0, 0, ...new Array(11).fill(512)]);
    expect(groups.slice(0, 2).map((g) => g.layers)).toEqual([
      [5, 11],
      [17, 23],
    ]);
    expect(groups[2].layers).toEqual([0, 1]);
  });

  it("Gemma 2's alternating layers make two groups of half; a model without windows one group", () => {
    const alternating = Array.from({ length: 26 }, (_, l) => (l % 2 === 0 ? 4096 : 0));
    expect(kvCacheGroups(alternating, true).map((g) => [g.window, g.layers.length])).toEqual([
      [0, 13],
      [4096, 13],
    ]);
    expect(kvCacheGroups(new Array(22).fill(0), true)).toEqual([
      { window: 0, layers: [...Array(22).keys()] },
    ]);
  });

  it("without the hybrid manager every layer is in one full-attention group", () => {
    const gemma3 = shapeConfig("gemma-3-1b").layerWindows;
    expect(kvCacheGroups(gemma3, false)).toEqual([{ window: 0, layers: [...Array(26).keys()] }]);
  });

  it("refuses a window that is not an integer ≥ 0", () => {
    expect(() => kvCacheGroups([0, -1], true)).toThrow(/layer 1 has window -1/);
    expect(() => kvCacheGroups([0, 1.5], true)).toThrow(/layer 1 has window 1.5/);
    expect(() => kvCacheGroups([], true)).toThrow(/at least one layer/);
  });

  it("partitions any layer mix into equal groups of one window each, as large as no padding allows", () => {
    const windows = fc.array(fc.constantFrom(0, 0, 4, 32, 512), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(windows, (layerWindows) => {
        const groups = kvCacheGroups(layerWindows, true);
        const k = layersPerBlock(groups);
        expect(groups.every((g) => g.layers.length === k)).toBe(true);
        expect(groups.flatMap((g) => g.layers).sort((a, b) => a - b)).toEqual([...layerWindows.keys()]);
        for (const g of groups) for (const l of g.layers) expect(layerWindows[l]).toBe(g.window);
        // k divides every window's layer count, and no larger k would
        const counts = [...new Set(layerWindows)].map((w) => layerWindows.filter((x) => x === w).length);
        expect(counts.every((n) => n % k === 0)).toBe(true);
        for (let bigger = k + 1; bigger <= Math.min(...counts); bigger++)
          expect(counts.every((n) => n % bigger === 0)).toBe(false);
      }),
    );
  });

  it("a request's peak blocks: every block in a full group, window − 1 tokens + a chunk + 1 block in a window group", () => {
    // 1000 tokens in blocks of 16: 63 blocks; window 512 with chunks of 256: ⌈767 / 16⌉ + 1 = 49
    expect(maxBlocksPerRequest([0], 1000, 16, 256)).toBe(63);
    expect(maxBlocksPerRequest([512], 1000, 16, 256)).toBe(49);
    expect(maxBlocksPerRequest([0, 512, 512], 1000, 16, 256)).toBe(63 + 2 * 49);
    // never more than the sequence has
    expect(maxBlocksPerRequest([512], 100, 16, 2048)).toBe(7);
  });
});

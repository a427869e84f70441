import { existsSync, readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";

const loaded = loadNativeAddon();
if (loaded instanceof Error) console.warn(`[skip] native probe: ${loaded.message}`);
const addon = loaded instanceof Error ? undefined : loaded;

/** The CPU's feature flags as Linux lists them, read apart from the addon's own detection. */
const cpuFlags = existsSync("/proc/cpuinfo")
  ? new Set(/^flags\s*:(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1].trim().split(/\s+/) ?? [])
  : undefined;
const hasAvx2 = cpuFlags?.has("avx2") && cpuFlags.has("fma");
if (addon && !hasAvx2) console.warn("[skip] native probe: no /proc/cpuinfo listing AVX2+FMA");

describe.skipIf(!addon || !hasAvx2)("the native probe", () => {
  test("reports a read curve over 1, 2, 4, 8 streams and a peak per instruction, the roof the best of them", () => {
    if (!addon || !cpuFlags) return;
    // 32 MiB: larger than the caches of a small machine, and quick; the figures themselves are not checked.
    const r = addon.probe(2, 32 * 2 ** 20);
    const positive = (x: number | undefined) =>
      expect(Number.isFinite(x) && (x ?? 0) > 0, String(x)).toBe(true);
    expect(r.readCurve.map((p) => p.streams)).toEqual([1, 2, 4, 8]);
    for (const p of r.readCurve) {
      positive(p.medianBytesPerSecond);
      positive(p.bestBytesPerSecond);
      expect(p.bestBytesPerSecond).toBeGreaterThanOrEqual(p.medianBytesPerSecond);
    }
    expect(r.readBytesPerSecond).toBe(Math.max(...r.readCurve.map((p) => p.bestBytesPerSecond)));
    positive(r.fmaFlopsPerSecond);
    positive(r.int8OpsPerSecond);
    for (const p of r.peaks) positive(p.opsPerSecond);
    const best = (kind: string) =>
      Math.max(...r.peaks.filter((p) => p.instruction.startsWith(kind)).map((p) => p.opsPerSecond));
    expect(r.fmaFlopsPerSecond).toBe(best("f32"));
    expect(r.int8OpsPerSecond).toBe(best("int8"));
    const bf16 = cpuFlags.has("avx512_bf16");
    expect("bf16FlopsPerSecond" in r).toBe(bf16);
    if (bf16) expect(r.bf16FlopsPerSecond).toBe(best("bf16"));
    // A peak for every kernel path the addon runs here, and only for those.
    const simd = addon.kernelPaths().filter((p) => p !== "scalar");
    expect([...new Set(r.peaks.map((p) => p.path))]).toEqual(simd);
  });
});

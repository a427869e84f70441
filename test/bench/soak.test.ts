import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, test } from "vitest";
import type { SoakReport } from "../../src/bench/soak/report.js";
import { requestKinds } from "../../src/bench/soak/traffic.js";

const cli = join(import.meta.dirname, "..", "..", "bin", "vellum.js");

test("bench soak: 6 s of mixed traffic on the demo model, every kind sent, 0 unexpected answers, greedy outputs unchanged", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vellum-soak-"));
  try {
    const out = join(dir, "soak.json");
    const { stdout } = await promisify(execFile)(
      "node",
      [cli, "bench", "soak", "--minutes", "0.1", "--concurrency", "4", "--out", out],
      { timeout: 60_000 },
    );
    const report = JSON.parse(readFileSync(out, "utf8")) as SoakReport;
    expect(stdout).toMatch(/errors: 0 unexpected answers/);
    expect(report.errors).toEqual({ unexpected: 0, serverErrors: 0, failedConnections: 0, examples: [] });
    expect(Object.keys(report.requests.byKind).sort()).toEqual(requestKinds.map((k) => k.name).sort());
    const counted = Object.values(report.requests.byKind).flatMap((counts) => Object.values(counts));
    expect(counted.reduce((a, b) => a + b, 0)).toBe(report.requests.total);
    expect(report.requests.byKind["bad-body"]).toEqual({ 400: expect.any(Number) });
    expect(report.seconds).toBeGreaterThanOrEqual(6);
    expect(report.health.probes).toBeGreaterThan(20);
    expect(report.health.failed).toBe(0);
    expect(report.health.p50Ms).toBeLessThanOrEqual(report.health.p99Ms);
    expect(report.health.p99Ms).toBeLessThanOrEqual(report.health.maxMs);
    // The server's memory is read from /proc: Linux only.
    if (process.platform === "linux") {
      expect(report.rss?.startBytes).toBeGreaterThan(0);
      expect(report.rss?.peakBytes).toBeGreaterThanOrEqual(report.rss?.endBytes ?? Infinity);
    } else expect(report.rss).toBeNull();
    expect(report.greedy).toMatchObject({ identical: true, changed: [] });
    expect(report.greedy.prompts).toBeGreaterThan(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

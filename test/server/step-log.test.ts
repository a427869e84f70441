import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { startServer } from "../../src/bench/serve/start-server.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import type { StepStats } from "../../src/engine/stats.js";
import { defaultServeSettings } from "../../src/workload/compare.js";

describe("vellum serve --step-log", () => {
  const dir = mkdtempSync(join(tmpdir(), "vellum-step-log-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("writes every engine step as a JSON line: its composition and where its time went", async () => {
    const stepLog = join(dir, "steps.jsonl");
    const server = await startServer({
      modelPath: bundledModelPath,
      settings: defaultServeSettings,
      stepLog,
    });
    const prompts = [
      [5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
      [20, 21, 22, 23, 24],
      [30, 31, 32, 33, 34, 35, 36, 37],
    ];
    try {
      await Promise.all(
        prompts.map(async (prompt) => {
          const response = await fetch(`${server.baseUrl}/v1/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ prompt, max_tokens: 6, ignore_eos: true, temperature: 0 }),
          });
          expect(response.status).toBe(200);
        }),
      );
    } finally {
      await server.stop();
    }
    const steps = readFileSync(stepLog, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as StepStats);
    // Every prompt token is prefilled once, and every sampled row is one of the 3 × 6 output tokens.
    const sum = (f: (s: StepStats) => number) => steps.reduce((n, s) => n + f(s), 0);
    expect(sum((s) => s.numPrefillTokens)).toBe(prompts.flat().length);
    expect(sum((s) => s.shape.numSampled)).toBe(3 * 6);
    for (const s of steps) {
      expect(s.forwardSeconds).toBeGreaterThan(0);
      expect(s.attentionSeconds).toBeGreaterThan(0);
      expect(s.attentionSeconds + s.classifierSeconds).toBeLessThan(s.forwardSeconds);
      // The classifier runs for the rows that sample, and only for them.
      expect(s.classifierSeconds > 0).toBe(s.shape.numSampled > 0);
      expect(s.forwardSeconds + s.sampleSeconds).toBeLessThanOrEqual(s.duration);
      expect(s.shape.numTokens).toBe(s.numScheduledTokens);
      expect(s.shape.prefillTokens + s.shape.decodeRequests).toBe(s.numScheduledTokens);
    }
  });
});

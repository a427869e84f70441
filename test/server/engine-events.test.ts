import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { EngineMonitor } from "../../src/engine/engine-monitor.js";
import type { EngineSnapshot } from "../../src/engine/engine-snapshot.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { snapshotIntervalMs } from "../../src/server/engine-events.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

const apiKey = "sk-events";
const auth = { authorization: `Bearer ${apiKey}` };

/** Reads the events stream for `ms` milliseconds (or until it ends) and returns the snapshots received. */
async function listen(url: string, ms: number, headers: Record<string, string> = auth) {
  const controller = new AbortController();
  const response = await fetch(`${url}/v1/engine/events`, { headers, signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const timer = setTimeout(() => controller.abort(), ms);
  let text = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body as ReadableStream<Uint8Array>) text += decoder.decode(chunk);
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  const events = text.split("\n\n").filter((event) => event.startsWith("data: "));
  return events.map((event) => JSON.parse(event.slice("data: ".length)) as EngineSnapshot);
}

describe("GET /v1/engine/events", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(
      syntheticModel("tiny-test", "f32"),
      { numBlocks: 64, backend: "reference" },
      { apiKey },
    );
  });
  afterAll(() => s.close(1000));

  test("needs the API key like the rest of /v1", async () => {
    const response = await fetch(`${s.url}/v1/engine/events`);
    expect(response.status).toBe(401);
    expect((await response.json()).error.type).toBe("AuthenticationError");
  });

  test("sends at most 10 snapshots a second, and each step once across them", async () => {
    const body = { prompt: [1, 2, 3, 4, 5], max_tokens: 40, ignore_eos: true };
    const [snapshots, completion] = await Promise.all([
      listen(s.url, 1500),
      new Promise((resolve) => setTimeout(resolve, 200)).then(() =>
        post(`${s.url}/v1/completions`, body, auth),
      ),
    ]);
    expect(completion.status).toBe(200);
    expect(snapshots.length).toBeGreaterThan(3);
    expect(snapshots.length).toBeLessThanOrEqual(Math.ceil(1500 / snapshotIntervalMs) + 1);
    const times = snapshots.map((snapshot) => snapshot.time);
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThan(0.05);
    // The cursor moves on: step numbers follow one another with no gap and no repeat.
    for (let i = 1; i < snapshots.length; i++)
      expect(snapshots[i].steps.first).toBe(snapshots[i - 1].steps.next);
    const decodes = snapshots.flatMap((snapshot) => snapshot.steps.rows).reduce((n, row) => n + row[2], 0);
    expect(decodes).toBe(completion.body.usage.completion_tokens - 1);
    expect(snapshots.flatMap((snapshot) => snapshot.finished.rows)).toHaveLength(1);
  });

  test("samples nothing once the client has gone", async () => {
    const snapshot = vi.spyOn(EngineMonitor.prototype, "snapshot");
    try {
      await listen(s.url, 300);
      expect(snapshot).toHaveBeenCalled();
      await new Promise((resolve) => setTimeout(resolve, 2 * snapshotIntervalMs));
      snapshot.mockClear();
      await new Promise((resolve) => setTimeout(resolve, 5 * snapshotIntervalMs));
      expect(snapshot).not.toHaveBeenCalled();
    } finally {
      snapshot.mockRestore();
    }
  });

  test("shutdown ends the stream at once instead of waiting out the grace period", async () => {
    const other = await startServer(syntheticModel("tiny-test", "f32"), {
      numBlocks: 16,
      backend: "reference",
    });
    const response = await fetch(`${other.url}/v1/engine/events`);
    const read = response.text();
    const started = performance.now();
    await other.close(30_000);
    await read;
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { expect, test } from "vitest";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { waitFor } from "../helpers.js";
import { floodingChat, stalledClient, startServer } from "../server-helpers.js";

/** Resolves when the socket has closed: drains it (it may be paused) to reach the end. */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.on("close", () => resolve());
    socket.on("error", () => {});
    socket.resume();
  });
}

test("close(grace) ends the streams of clients that stopped reading, destroys their sockets, and resolves promptly", async () => {
  const model = syntheticModel("tiny-test", "f32");
  const s = await startServer(model, { numBlocks: 1024 });
  const responses: ServerResponse[] = [];
  s.app.server.on("request", (_request, response) => responses.push(response));
  const clients = [0, 1].map(() => stalledClient(s.url, "/v1/chat/completions", floodingChat));
  await waitFor(
    () => responses.length === 2 && responses.every((r) => r.writableNeedDrain),
    60_000,
    "both responses blocked on a full socket",
  );
  expect(s.engine.core.scheduler.stats().numRunning).toBeGreaterThan(0);

  const graceMs = 200;
  const start = performance.now();
  await s.close(graceMs);
  const seconds = (performance.now() - start) / 1000;
  if (process.env.SHOW) console.log(`close(${graceMs}) with 2 clients not reading: ${seconds.toFixed(3)} s`);
  // The grace period, then at most the half second aborted responses get to flush, plus slack for a busy machine.
  expect(seconds).toBeLessThan(graceMs / 1000 + 0.5 + 2);
  expect(responses.every((r) => !r.writableFinished)).toBe(true);
  await Promise.all(clients.map(closed));
  expect(s.engine.core.scheduler.stats()).toMatchObject({ numRunning: 0, numWaiting: 0, kvCacheUsage: 0 });
});

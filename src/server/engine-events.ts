import type { FastifyInstance } from "fastify";
import type { AsyncEngine } from "../engine/async-engine.js";
import { EngineMonitor } from "../engine/engine-monitor.js";
import type { SnapshotCursor } from "../engine/engine-snapshot.js";
import { SseWriter } from "./sse.js";

/** Ten snapshots a second at most: smooth enough to watch, and nothing the engine notices. */
export const snapshotIntervalMs = 100;

/**
 * `GET /v1/engine/events`: a server-sent-events stream of engine snapshots (engine-snapshot.ts) for the web
 * page, one every snapshotIntervalMs while the client listens; the first carries the retained history, each later
 * one the steps and finished completions since the one before. Nothing is sampled while no one listens, and a
 * snapshot is skipped while the client has not read the previous one. It needs the API key like the rest of /v1
 * (the page reads it with fetch, which can send the header). Shutdown ends every stream.
 */
export function registerEngineEvents(app: FastifyInstance, engine: AsyncEngine): void {
  const monitor = new EngineMonitor(engine);
  const open = new Set<() => void>();
  app.addHook("preClose", async () => {
    for (const stop of open) stop();
  });
  app.get("/v1/engine/events", async (_request, reply) => {
    const stream = new SseWriter(reply);
    let cursor: SnapshotCursor = { steps: 0, finished: 0 };
    const sample = () => {
      if (stream.backedUp) return;
      const snapshot = monitor.snapshot(cursor);
      cursor = { steps: snapshot.steps.next, finished: snapshot.finished.next };
      stream.send(snapshot);
    };
    sample();
    const timer = setInterval(sample, snapshotIntervalMs);
    const stop = () => {
      if (!open.delete(stop)) return;
      clearInterval(timer);
      stream.end();
    };
    open.add(stop);
    reply.raw.on("close", stop);
    return reply;
  });
}

import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { createEngine, type EngineOptions } from "../src/engine/create-engine.js";
import type { LoadedModel } from "../src/model/model.js";
import { buildServer, type ServerOptions, type VellumServer } from "../src/server/server.js";

export interface TestServer extends VellumServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** The official client, pointed at this server. */
  client: OpenAI;
  engine: ReturnType<typeof createEngine>["engine"];
}

/** A real server on 127.0.0.1, on a free port. */
export async function startServer(
  model: LoadedModel,
  engineOptions: EngineOptions = {},
  serverOptions: ServerOptions = {},
): Promise<TestServer> {
  const { engine } = createEngine(model, { numBlocks: 512, ...engineOptions });
  const server = buildServer(engine, model, serverOptions);
  await server.app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = server.app.server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: serverOptions.apiKey ?? "none", maxRetries: 0 });
  return { ...server, url, client, engine };
}

/** POSTs JSON (or a raw string body) and returns the status, headers and parsed body. */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === "" ? undefined : JSON.parse(text) };
}

/** Prometheus text → value of each sample, keyed by name plus labels as written (model_name dropped). */
export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = (m[2] ?? "").replace(/,?model_name="[^"]*"/, "").replace(/^\{,?/, "{");
    samples.set(labels === "{}" || labels === "" ? m[1] : `${m[1]}${labels}`, Number(m[3]));
  }
  return samples;
}

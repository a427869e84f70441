import { type AddressInfo, connect, type Socket } from "node:net";
import OpenAI from "openai";
import { createEngine, type EngineOptions } from "../src/engine/create-engine.js";
import type { LoadedModel } from "../src/model/model.js";
import { buildServer, type ServerOptions, type VellumServer } from "../src/server/server.js";

export interface TestServer extends VellumServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** The official client, pointed at this server. */
  client: OpenAI;
  engine: Awaited<ReturnType<typeof createEngine>>["engine"];
}

/** A real server on 127.0.0.1, on a free port. */
export async function startServer(
  model: LoadedModel,
  engineOptions: EngineOptions = {},
  serverOptions: ServerOptions = {},
): Promise<TestServer> {
  const { engine } = await createEngine(model, { numBlocks: 512, ...engineOptions });
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

/** One HTTP/1.1 request written byte for byte on a fresh connection: `target` goes out verbatim, unnormalized. */
function rawRequest(url: string, method: string, target: string, headers: Record<string, string>, body = "") {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const head = Object.entries({
    host: `${hostname}:${port}`,
    connection: "close",
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    ...headers,
  }).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.write(`${method} ${target} HTTP/1.1\r\n${head.join("")}\r\n${body}`);
  return socket;
}

/** Sends a request with `target` exactly as written and resolves with the response's status code. */
export function rawStatus(
  url: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<number> {
  const socket = rawRequest(url, method, target, headers, body);
  let response = "";
  socket.on("data", (data: Buffer) => {
    response += data.toString("latin1");
  });
  return new Promise((resolve, reject) => {
    socket.on("error", reject);
    socket.on("close", () => {
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(response);
      if (status) resolve(Number(status[1]));
      else reject(new Error(`no HTTP status line in ${JSON.stringify(response.slice(0, 200))}`));
    });
  });
}

/**
 * A stream of about 7 MB (20 choices × 220 tokens, each chunk carrying 20 alternatives' logprobs): more
 * than the kernel's socket buffers take on loopback (about 4 MB), so the server's own buffers fill.
 */
export const floodingChat = {
  messages: [{ role: "user", content: "hi" }],
  n: 20,
  max_tokens: 220,
  ignore_eos: true,
  logprobs: true,
  top_logprobs: 20,
  stream: true,
};

/**
 * POSTs `body` and never reads the response: the socket is paused, so the kernel's buffers and then the
 * server's fill up, as with a client that stopped reading a stream.
 */
export function stalledClient(url: string, path: string, body: unknown): Socket {
  const socket = rawRequest(url, "POST", path, { connection: "keep-alive" }, JSON.stringify(body));
  socket.pause();
  return socket;
}

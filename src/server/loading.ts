import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ApiError } from "./errors.js";

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** How long clients are told to wait (Retry-After) while the model loads. */
const loadingRetryAfterS = 5;

export interface LoadingServer {
  /** The listening server; pass it to buildServer as `httpServer` once the model has loaded. */
  server: Server;
  /** http://HOST:PORT as bound (the port chosen by the system when 0 was asked for). */
  url: string;
  /** From now on `handler` (the app's router) answers every request, on connections already open too. */
  serveWith(handler: Handler): void;
}

/** The liveness route: 200 while the process runs, whether the model is loading, serving or draining. */
export const livenessPath = "/live";

/**
 * Listens before the model loads, so that an orchestrator sees a live process at once: /live answers 200,
 * /health (readiness) and every other path 503 in OpenAI's error shape with Retry-After.
 */
export function listenWhileLoading(host: string, port: number): Promise<LoadingServer> {
  const loading: Handler = (request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path === livenessPath) {
      response.writeHead(200).end();
      return;
    }
    const body = JSON.stringify(new ApiError(503, "the model is loading", null, loadingRetryAfterS).body);
    response
      .writeHead(503, {
        "content-type": "application/json; charset=utf-8",
        "retry-after": String(loadingRetryAfterS),
      })
      .end(body);
  };
  const server = createServer(loading);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      const address = server.address() as AddressInfo;
      const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
      resolve({
        server,
        url: `http://${shown}:${address.port}`,
        serveWith(handler) {
          server.off("request", loading);
          server.on("request", handler);
        },
      });
    });
  });
}

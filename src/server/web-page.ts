import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { ApiError } from "./errors.js";

/** Where `npm run build` (web/build.mjs) writes the page: dist/web, from src/server or dist/server alike. */
export const webRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "web");

/**
 * The web page (chat and the live engine view) at `/`, its bundled script and styles under `/assets/`. Public like
 * /health: the page holds no data, and asks for the API key itself when the server has one.
 */
export function registerWebPage(app: FastifyInstance): void {
  // Not part of the API: left out of /openapi.json.
  const open = { config: { public: true }, schema: { hide: true } };
  if (!existsSync(join(webRoot, "index.html"))) {
    app.get("/", open, async () => {
      throw new ApiError(404, `the web page is not built (no ${webRoot}): run npm run build`);
    });
    return;
  }
  app.register(fastifyStatic, { root: webRoot, serve: false });
  app.get("/", open, (_request, reply) => reply.sendFile("index.html"));
  app.get("/assets/:file", open, (request, reply) =>
    reply.sendFile(join("assets", (request.params as { file: string }).file)),
  );
}

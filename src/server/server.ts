import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import cors from "@fastify/cors";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from "fastify";
import type { AsyncEngine } from "../engine/async-engine.js";
import type { LoadedModel } from "../model/model.js";
import { OffThreadTokenizer } from "../model/tokenizer/off-thread.js";
import { bearerKeyCheck } from "./auth.js";
import { chatCompletions } from "./chat.js";
import { completions } from "./completions.js";
import type { ServerContext } from "./context.js";
import { registerEngineEvents } from "./engine-events.js";
import { ApiError, toApiError } from "./errors.js";
import { checkModel } from "./generation.js";
import { livenessPath } from "./loading.js";
import { createMetrics } from "./metrics.js";
import { type MetricsPrefix, withPrefixAlias } from "./metrics-prefix.js";
import { documentedBody, registerOpenApi } from "./openapi.js";
import { logWhenClosed } from "./request-log.js";
import { responses } from "./responses.js";
import { responsesBody } from "./responses-schema.js";
import { chatBody, completionBody, detokenizeBody, tokenizeBody } from "./schemas.js";
import { detokenize, tokenize } from "./tokenize.js";
import { vellumVersion } from "./version.js";
import { registerWebPage } from "./web-page.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Answered while the server drains (liveness, metrics, version); every other route gets 503 then. */
    answersWhileDraining?: boolean;
  }
}

export interface ServerOptions {
  /** The name clients use in `model`; default: the model's own name. */
  servedModelName?: string;
  /** When set, every route but the public ones (probes, tokenizer) needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Most sequences waiting + running; beyond it new requests get 503 with Retry-After. 0 = no bound. */
  maxQueue?: number;
  /**
   * Default of the request field parse_special: special-token text in a completion prompt becomes control
   * tokens (default true, as in vLLM). Chat message content is plain text either way.
   */
  parseSpecial?: boolean;
  /** Most sequences (prompts × n) one request may ask for; beyond it 400. 0 = no cap. */
  maxSeqsPerRequest?: number;
  /** Origins browsers may call from: "*", or one or more origins separated by commas (CORS, preflights answered). */
  corsOrigin?: string;
  /** Largest request body in bytes (413 above it); default 1 MiB. */
  bodyLimit?: number;
  /** "vllm": /metrics also exports every vellum: series under vllm: names; default "vellum" (vellum: only). */
  metricsPrefix?: MetricsPrefix;
  /**
   * A server already listening (listenWhileLoading: `vellum serve` answers probes while the model loads); the
   * caller hands it the app's router (`app.routing`) once `app.ready()` resolves. Default: fastify's own.
   */
  httpServer?: Server;
  /** fastify's (pino) logger settings; false = silent (tests). */
  logger?: FastifyServerOptions["logger"];
}

export interface VellumServer {
  app: FastifyInstance;
  /**
   * Graceful shutdown (a drain): at once /health turns 503 (not ready) and new requests get 503, while the
   * liveness route, /metrics and /version still answer; running requests get `graceMs` to finish, then the
   * rest are aborted (their responses end with finish_reason "abort"). The socket stops listening once no
   * request runs. A connection whose response still has not finished `flushMs` after the abort (a client that
   * stopped reading, a body still uploading) is destroyed, so this resolves within about graceMs + flushMs
   * whatever the clients do.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Bounds on queued work, so that no request (or flood of requests) can queue unbounded work. A queue of 16
 * batches of vLLM's default 256 sequences is more than a deployment meant to answer interactively ever
 * holds; one request may fill 4 such batches (8 prompts × OpenAI's largest n, 128).
 */
export const defaultLimits = { maxQueue: 4096, maxSeqsPerRequest: 1024 };

const defaultBodyLimit = 1 << 20;
const defaultGraceMs = 30_000;
/** After the grace period, how long aborted responses get to deliver their last chunk before their sockets go. */
const flushMs = 500;

/** The OpenAI-compatible HTTP server over one engine; call `app.listen` to serve. */
export function buildServer(
  engine: AsyncEngine,
  model: LoadedModel,
  options: ServerOptions = {},
): VellumServer {
  const ctx: ServerContext = {
    engine,
    model,
    servedModelName: options.servedModelName ?? model.name,
    encoder: new OffThreadTokenizer(model.tokenizer),
    parseSpecial: options.parseSpecial ?? true,
    maxQueue: options.maxQueue ?? defaultLimits.maxQueue,
    maxSeqsPerRequest: options.maxSeqsPerRequest ?? defaultLimits.maxSeqsPerRequest,
    inflight: new Set(),
  };
  const metrics = createMetrics(engine, ctx.servedModelName);
  const authorized = options.apiKey === undefined ? () => true : bearerKeyCheck(options.apiKey);
  const unauthorized = new ApiError(401, "missing or incorrect API key (send Authorization: Bearer <key>)");
  const app = Fastify({
    logger: options.logger ?? false,
    // One line per request comes from our onResponse hook instead (request-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? defaultBodyLimit,
    ...(options.httpServer !== undefined && { serverFactory: () => options.httpServer as Server }),
    genReqId: () => randomUUID().replaceAll("-", ""),
    // Requests arriving while shutting down get our own 503 (below), in OpenAI's error shape.
    return503OnClosing: false,
    // A URL the router cannot decode matches no route, so it needs the key like any other unmatched path.
    frameworkErrors: (err, request: FastifyRequest, reply: FastifyReply) => {
      logWhenClosed(request, reply);
      const apiError = authorized(request.headers.authorization) ? toApiError(err) : unauthorized;
      return reply.code(apiError.status).send(apiError.body);
    },
  });
  let closing = false;

  app.addHook("onRequest", async (request, reply) => {
    logWhenClosed(request, reply);
    if (closing && !request.routeOptions.config.answersWhileDraining) {
      reply.header("connection", "close");
      throw new ApiError(503, "the server is shutting down");
    }
  });
  if (options.corsOrigin !== undefined) {
    // A preflight is answered with the headers it asks for (the openai client sends x-stainless-*).
    const origin = options.corsOrigin === "*" ? "*" : options.corsOrigin.split(",").map((o) => o.trim());
    app.register(cors, { origin });
  }
  // The key is checked after CORS's own hook (a plugin's, added once plugins load), so that preflights are
  // answered without it and errors, 401 included, carry the CORS headers a browser needs to read them.
  // Decided on the matched route: a 404 (no route) is not public either.
  app.after(() =>
    app.addHook("onRequest", async (request) => {
      if (!request.routeOptions.config.public && !authorized(request.headers.authorization))
        throw unauthorized;
    }),
  );
  app.addHook("onClose", () => ctx.encoder.close());
  app.addHook("onClose", () => engine.structuredOutputs.close());
  app.setErrorHandler((err, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) request.log.error(err);
    if (apiError.retryAfter !== undefined) reply.header("retry-after", String(apiError.retryAfter));
    return reply.code(apiError.status).send(apiError.body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(new ApiError(404, `no route ${request.method} ${request.url}`).body),
  );

  registerOpenApi(app);
  // Public as in vLLM: probes and the tokenizer; the /v1 API needs the key. While draining, /health (readiness)
  // fails like every other route but these, which say the process is alive and what it is doing.
  const open = { config: { public: true } };
  const alwaysOpen = { config: { public: true, answersWhileDraining: true } };
  app.get("/health", open, async (_request, reply) => reply.code(200).send());
  app.get(livenessPath, alwaysOpen, async (_request, reply) => reply.code(200).send());
  app.get("/version", alwaysOpen, async () => ({ version: vellumVersion }));
  app.get("/metrics", alwaysOpen, async (_request, reply) =>
    reply
      .type(metrics.contentType)
      .send(withPrefixAlias(await metrics.metrics(), options.metricsPrefix ?? "vellum")),
  );
  const modelCard = () => ({
    id: ctx.servedModelName,
    object: "model",
    created: Math.floor(Date.now() / 1000),
    owned_by: "vellum",
    root: model.path,
    max_model_len: engine.maxModelLen,
  });
  app.get("/v1/models", async () => ({ object: "list", data: [modelCard()] }));
  // A wildcard, not a one-segment parameter: served names such as "org/model" hold slashes.
  app.get("/v1/models/*", async (request) => {
    const id = (request.params as { "*": string })["*"];
    if (id === "") throw new ApiError(404, "no model id after /v1/models/", "model");
    checkModel(ctx, id);
    return modelCard();
  });
  app.post("/v1/completions", documentedBody(completionBody, "Create a completion"), (request, reply) =>
    completions(ctx, request, reply),
  );
  app.post("/v1/chat/completions", documentedBody(chatBody, "Create a chat completion"), (request, reply) =>
    chatCompletions(ctx, request, reply),
  );
  app.post("/v1/responses", documentedBody(responsesBody, "Create a response"), (request, reply) =>
    responses(ctx, request, reply),
  );
  app.post(
    "/tokenize",
    { ...open, ...documentedBody(tokenizeBody, "Tokenize a prompt or chat") },
    (request) => tokenize(ctx, request),
  );
  app.post(
    "/detokenize",
    { ...open, ...documentedBody(detokenizeBody, "Detokenize token ids") },
    async (request) => detokenize(ctx, request),
  );
  registerEngineEvents(app, engine);
  registerWebPage(app);

  return {
    app,
    async close(graceMs = defaultGraceMs) {
      closing = true;
      let destroyAll: NodeJS.Timeout | undefined;
      let graceOver = false;
      const abortAll = setTimeout(() => {
        graceOver = true;
        for (const controller of ctx.inflight) controller.abort();
        destroyAll = setTimeout(() => app.server.closeAllConnections(), flushMs);
      }, graceMs);
      let sweep: NodeJS.Timeout | undefined;
      try {
        while (ctx.inflight.size > 0 && !graceOver) await new Promise((resolve) => setTimeout(resolve, 50));
        // A connection kept alive after its last response would hold close() open until its keep-alive timeout;
        // one a client still holds open with nothing in flight (seen under load) goes once flushMs have passed.
        sweep = setInterval(() => app.server.closeIdleConnections(), 50);
        if (!graceOver) destroyAll = setTimeout(() => app.server.closeAllConnections(), flushMs);
        // fastify closes only a server it listened on itself.
        if (options.httpServer !== undefined) await new Promise((resolve) => app.server.close(resolve));
        await app.close();
      } finally {
        clearTimeout(abortAll);
        clearTimeout(destroyAll);
        clearInterval(sweep);
      }
    },
  };
}

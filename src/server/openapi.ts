import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance, RouteOptions, RouteShorthandOptions } from "fastify";
import { z } from "zod";
import { vellumVersion } from "./version.js";

interface DocumentedSchema {
  hide?: boolean;
  summary?: string;
  body?: Record<string, unknown>;
}

/**
 * The OpenAPI document (GET /openapi.json) and Swagger UI (/docs, its assets served from the package, so it
 * works offline). Every route registered after this call is listed as it is registered, so the document
 * cannot miss one; request bodies come from the same zod schemas the handlers parse with (`documentedBody`).
 * (@fastify/swagger's own route collection starts only once the app is ready, after buildServer has added
 * its routes, so it gets the finished document, in its static mode.)
 */
export function registerOpenApi(app: FastifyInstance): void {
  const paths: Record<string, Record<string, unknown>> = {};
  app.addHook("onRoute", (route) => {
    // Public, as vLLM's /docs is: the page and its assets tell nothing the API itself does not.
    if (route.url.startsWith("/docs")) route.config = { ...route.config, public: true };
    else if (route.url !== "/openapi.json") addOperations(paths, route);
  });
  const document = () => ({
    openapi: "3.1.0",
    info: {
      title: "vellum",
      description: "OpenAI-compatible API of the vellum LLM inference engine",
      version: vellumVersion,
    },
    components: {
      securitySchemes: {
        bearer: { type: "http" as const, scheme: "bearer", description: "--api-key, when set" },
      },
    },
    paths,
  });
  app.register(swagger, () => ({ mode: "static" as const, specification: { document: document() } }));
  app.register(swaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { config: { public: true } }, async () => app.swagger());
}

/**
 * One route's operations in OpenAPI's terms; HEAD (which fastify adds to every GET) and routes marked hidden
 * (CORS's preflight route) left out.
 */
function addOperations(paths: Record<string, Record<string, unknown>>, route: RouteOptions): void {
  const schema = (route.schema ?? {}) as DocumentedSchema;
  const methods = [route.method].flat().filter((m) => m !== "HEAD");
  if (methods.length === 0 || schema.hide) return;
  // fastify's :name and trailing * (a served model name may hold slashes) as OpenAPI path parameters.
  const names = [...route.url.matchAll(/:(\w+)/g)].map((m) => m[1]);
  if (route.url.endsWith("*")) names.push("wildcard");
  const path = route.url.replace(/:(\w+)/g, "{$1}").replace(/\*$/, "{wildcard}");
  for (const method of methods) {
    paths[path] ??= {};
    paths[path][method.toLowerCase()] = {
      ...(schema.summary && { summary: schema.summary }),
      ...(names.length > 0 && {
        parameters: names.map((name) => ({ name, in: "path", required: true, schema: { type: "string" } })),
      }),
      ...(schema.body && {
        requestBody: { required: true, content: { "application/json": { schema: schema.body } } },
      }),
      ...(!route.config?.public && { security: [{ bearer: [] }] }),
      responses: {
        default: {
          description: "the result, or an error in OpenAI's shape {error: {message, type, param, code}}",
        },
      },
    };
  }
}

/**
 * A zod schema as JSON Schema (draft 2020-12, what OpenAPI 3.1 uses), as a client must send it. A field zod
 * refuses whenever present (z.undefined(), e.g. parse_special in a chat) accepts nothing.
 */
export function requestJsonSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, {
    io: "input",
    unrepresentable: "any",
    override: (ctx) => {
      if (ctx.zodSchema._zod.def.type === "undefined") ctx.jsonSchema.not = {};
    },
  });
}

/**
 * Route options that put `body` in the OpenAPI document. The handler parses the body with zod itself, so that
 * every error keeps OpenAI's shape and names the field; fastify's own validation of it is switched off.
 */
export function documentedBody(body: z.ZodType, summary: string): RouteShorthandOptions {
  return {
    schema: { summary, body: requestJsonSchema(body) },
    validatorCompiler: () => () => true,
  };
}

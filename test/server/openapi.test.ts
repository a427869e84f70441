import { Ajv2020 } from "ajv/dist/2020.js";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { chatBody } from "../../src/server/schemas.js";
import { describeBrowser, launchChromium } from "../browser.js";
import { startServer, type TestServer } from "../server-helpers.js";

/**
 * Every route fastify's router holds, as "METHOD /path", read from its printed tree: each line is a segment
 * under its parent's path, with the route's methods in parentheses. A wildcard follows a slash.
 */
function registeredRoutes(tree: string): string[] {
  const routes: string[] = [];
  const parents: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1].length / 4;
    const parent = parents[depth - 1] ?? "";
    const joined = /^[*:]/.test(m[2]) && !parent.endsWith("/") ? `${parent}/${m[2]}` : `${parent}${m[2]}`;
    parents[depth] = joined;
    for (const method of m[3]?.split(", ") ?? []) if (method !== "HEAD") routes.push(`${method} ${joined}`);
  }
  return routes;
}

/** Chat bodies the zod schema accepts and refuses, for all kinds of reasons. */
const chatSamples: unknown[] = [
  { messages: [{ role: "user", content: "Hi" }] },
  {
    model: "demo",
    messages: [
      { role: "system", content: "Be terse." },
      { role: "user", content: "Hi" },
    ],
    n: 2,
  },
  { messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }], max_tokens: null, stop: ["\n"] },
  {
    messages: [
      { role: "user", content: "Weather?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "c1", type: "function", function: { name: "get", arguments: "{}" } }],
      },
      { role: "tool", content: "sunny", tool_call_id: "c1" },
    ],
    tools: [{ type: "function", function: { name: "get", parameters: { type: "object" } } }],
    tool_choice: "auto",
  },
  {
    messages: [{ role: "user", content: "Hi" }],
    response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object" } } },
  },
  {
    messages: [{ role: "user", content: "Hi" }],
    logit_bias: { "12": 1.5 },
    top_logprobs: 20,
    logprobs: true,
  },
  {},
  { messages: [] },
  { messages: [{ role: "robot", content: "Hi" }] },
  { messages: [{ role: "user", content: 3 }] },
  { messages: [{ role: "user", content: "Hi" }], suffix: "!" },
  { messages: [{ role: "user", content: "Hi" }], n: 0 },
  { messages: [{ role: "user", content: "Hi" }], n: 129 },
  { messages: [{ role: "user", content: "Hi" }], n: 1.5 },
  { messages: [{ role: "user", content: "Hi" }], parse_special: true },
  { messages: [{ role: "user", content: "Hi" }], stop: "" },
  { messages: [{ role: "user", content: "Hi" }], temperature: "hot" },
  { messages: [{ role: "user", content: "Hi" }], top_logprobs: 21 },
  { messages: [{ role: "user", content: "Hi" }], logit_bias: { a: 1 } },
  {
    messages: [{ role: "user", content: "Hi" }],
    tools: [{ type: "function", function: { name: "no spaces" } }],
  },
  { messages: [{ role: "user", content: "Hi" }], response_format: { type: "xml" } },
  { messages: [{ role: "tool", content: "sunny" }] },
];

describe("GET /openapi.json and /docs", () => {
  const model = loadModel(bundledModelPath);
  let s: TestServer;
  let document: {
    info: { version: string };
    paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: object }> } }>>;
  };
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "demo", apiKey: "secret", corsOrigin: "*" });
    const res = await fetch(`${s.url}/openapi.json`);
    expect(res.status).toBe(200);
    document = await res.json();
  });
  afterAll(() => s.close(1000));

  test("lists every route the server registers under /v1, and only routes it has", async () => {
    const routes = registeredRoutes(s.app.printRoutes({ commonPrefix: false }));
    const v1 = routes.filter((r) => r.split(" ")[1].startsWith("/v1/"));
    expect(v1).toContain("POST /v1/chat/completions");
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path.replace("{wildcard}", "*")}`),
    );
    expect(documented).toEqual(expect.arrayContaining(v1));
    for (const route of documented) expect(routes).toContain(route);
  });

  test("the /v1/chat/completions body schema accepts and refuses the same bodies as the server's zod schema", () => {
    const schema =
      document.paths["/v1/chat/completions"].post.requestBody?.content["application/json"].schema;
    const validate = new Ajv2020({ strict: false }).compile(schema ?? {});
    const accepted = chatSamples.filter((body) => chatBody.safeParse(body).success);
    // Both kinds are present, so the comparison can tell a schema that accepts everything from the real one.
    expect(accepted.length).toBeGreaterThan(4);
    expect(chatSamples.length - accepted.length).toBeGreaterThan(10);
    for (const body of chatSamples) {
      expect(validate(body), JSON.stringify(body)).toBe(chatBody.safeParse(body).success);
    }
  });

  test("needs no API key, names vellum's version; /docs serves Swagger UI from the package", async () => {
    const { version } = await (await fetch(`${s.url}/version`)).json();
    expect(document.info.version).toBe(version);
    const page = await fetch(`${s.url}/docs/static/index.html`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("swagger-ui");
    const bundle = await fetch(`${s.url}/docs/static/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    // The API itself still needs the key.
    expect((await fetch(`${s.url}/v1/models`)).status).toBe(401);
  });
});

describeBrowser("/docs in Chromium", () => {
  let s: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    s = await startServer(loadModel(bundledModelPath), { numBlocks: 64 }, { apiKey: "secret" });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await s.close(1000);
  });

  test("Swagger UI renders every operation of the document, with no console errors and nothing fetched elsewhere", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    const elsewhere: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("request", (r) => {
      if (!r.url().startsWith(s.url) && !r.url().startsWith("data:")) elsewhere.push(r.url());
    });
    await page.goto(`${s.url}/docs`);
    await page.waitForSelector(".opblock-summary-path", { timeout: 30_000 });
    const shown = await page.$$eval(".opblock-summary-path", (nodes) =>
      nodes.map((n) => n.textContent?.trim()),
    );
    const paths = Object.keys((await (await fetch(`${s.url}/openapi.json`)).json()).paths);
    expect(new Set(shown.map((p) => p?.replaceAll("\u200b", "")))).toEqual(new Set(paths));
    expect(errors).toEqual([]);
    expect(elsewhere).toEqual([]);
  });
});

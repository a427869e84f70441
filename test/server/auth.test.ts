import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { post, rawStatus, startServer, type TestServer } from "../server-helpers.js";

const model = syntheticModel("tiny-test", "f32");

/** Every route of the /v1 API, with a body that would succeed (200) if it got through. */
const v1Routes: { method: string; path: string; body?: object }[] = [
  { method: "GET", path: "/v1/models" },
  { method: "GET", path: `/v1/models/${encodeURIComponent(model.name)}` },
  { method: "POST", path: "/v1/completions", body: { prompt: "hi", max_tokens: 1 } },
  {
    method: "POST",
    path: "/v1/chat/completions",
    body: { messages: [{ role: "user", content: "hi" }], max_tokens: 1 },
  },
];

const hex = (char: string) => `%${char.charCodeAt(0).toString(16).padStart(2, "0")}`;

/**
 * Spellings of a /v1 path that a router, a proxy or a client may read as the same route (or as none).
 * Each maps the canonical path ("/v1/models") to the request target sent verbatim. Add any new one here.
 */
const spellings: [name: string, spell: (path: string) => string][] = [
  ["as is", (p) => p],
  ["%76 for v", (p) => p.replace("/v1", "/%761")],
  ["%56 for V", (p) => p.replace("/v1", "/%561")],
  ["%31 for 1", (p) => p.replace("/v1", "/v%31")],
  ["every letter encoded", (p) => p.replace(/[a-z0-9]/g, hex)],
  ["upper-case hex escapes", (p) => p.replace(/[a-z]/g, (c) => hex(c).toUpperCase())],
  ["%2F for the slash after v1", (p) => p.replace("/v1/", "/v1%2F")],
  ["%2f lower case", (p) => p.replace("/v1/", "/v1%2f")],
  ["%2F doubling the first slash", (p) => `/%2F${p.slice(1)}`],
  ["double-encoded v (%2576)", (p) => p.replace("/v1", "/%25761")],
  ["double-encoded slash (%252F)", (p) => p.replace("/v1/", "/v1%252F")],
  ["leading doubled slash", (p) => `/${p}`],
  ["doubled slash after v1", (p) => p.replace("/v1/", "/v1//")],
  ["backslash after v1", (p) => p.replace("/v1/", "/v1\\")],
  ["dot-dot segment /v1/../v1/", (p) => p.replace("/v1/", "/v1/../v1/")],
  ["dot-dot from elsewhere /x/../", (p) => `/x/..${p}`],
  ["dot segment /./", (p) => `/.${p}`],
  ["dot segment after v1", (p) => p.replace("/v1/", "/v1/./")],
  ["encoded dot-dot %2e%2e", (p) => p.replace("/v1/", "/v1/%2e%2e/v1/")],
  ["upper case V1", (p) => p.replace("/v1", "/V1")],
  ["all upper case", (p) => p.toUpperCase()],
  ["trailing slash", (p) => `${p}/`],
  ["trailing dot", (p) => `${p}.`],
  ["trailing %00", (p) => `${p}%00`],
  ["trailing %20", (p) => `${p}%20`],
  ["trailing lone %", (p) => `${p}%`],
  ["malformed escape %zz", (p) => p.replace("/v1/", "/v1/%zz")],
  ["matrix parameter ;x", (p) => `${p};x`],
  ["query", (p) => `${p}?x=1`],
  ["empty query", (p) => `${p}?`],
  ["query naming a public route", (p) => `${p}?/health`],
  ["encoded query mark %3F", (p) => `${p}%3Fx=1`],
  ["fragment", (p) => `${p}#f`],
  ["encoded fragment mark %23", (p) => `${p}%23f`],
  ["absolute-form target", (p) => `http://127.0.0.1${p}`],
  ["absolute-form, encoded v", (p) => `http://127.0.0.1${p.replace("/v1", "/%761")}`],
];

/** Authorization headers that must not be accepted for the key "sesame". */
const badCredentials: [name: string, headers: Record<string, string>][] = [
  ["no key", {}],
  ["wrong key", { authorization: "Bearer wrong" }],
  ["the key without Bearer", { authorization: "sesame" }],
  ["a prefix of the key", { authorization: "Bearer sesam" }],
  ["the key and more", { authorization: "Bearer sesame2" }],
  ["Basic scheme", { authorization: "Basic sesame" }],
];

const key = "sesame";

describe("--api-key protects the /v1 API however its path is spelled", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { apiKey: key });
  });
  afterAll(() => s.close(1000));

  test("every spelling of every /v1 route, without the key or with a wrong one: 401", async () => {
    const table: { method: string; target: string; spelling: string; credentials: string; status: number }[] =
      [];
    for (const route of v1Routes) {
      const body = route.body === undefined ? undefined : JSON.stringify(route.body);
      for (const [spelling, spell] of spellings) {
        const target = spell(route.path);
        for (const [credentials, headers] of badCredentials) {
          const status = await rawStatus(s.url, route.method, target, headers, body);
          table.push({ method: route.method, target, spelling, credentials, status });
        }
      }
    }
    if (process.env.SHOW) console.table(table);
    expect(table).toHaveLength(v1Routes.length * spellings.length * badCredentials.length);
    expect(table.filter((row) => row.status !== 401)).toEqual([]);
  });

  test("the right key opens every /v1 route", async () => {
    for (const route of v1Routes) {
      const body = route.body === undefined ? undefined : JSON.stringify(route.body);
      const status = await rawStatus(
        s.url,
        route.method,
        route.path,
        { authorization: `Bearer ${key}` },
        body,
      );
      expect(status, `${route.method} ${route.path}`).toBe(200);
    }
    expect((await s.client.models.list()).data).toHaveLength(1);
  });

  test("the probes and the tokenizer stay open without a key", async () => {
    for (const path of ["/health", "/version", "/metrics"]) {
      expect((await fetch(`${s.url}${path}`)).status, path).toBe(200);
    }
    expect((await post(`${s.url}/tokenize`, { prompt: "hi" })).status).toBe(200);
    expect((await post(`${s.url}/detokenize`, { tokens: [1, 2] })).status).toBe(200);
  });

  test("a path that matches no route needs the key too; with it, a 404", async () => {
    expect((await post(`${s.url}/v1/embeddings`, { input: "hi" })).status).toBe(401);
    expect((await post(`${s.url}/admin`, {})).status).toBe(401);
    const withKey = await post(`${s.url}/v1/embeddings`, { input: "hi" }, { authorization: `Bearer ${key}` });
    expect(withKey.status).toBe(404);
    expect(withKey.body.error).toMatchObject({ type: "NotFoundError", code: 404 });
    const badUrl = await rawStatus(s.url, "GET", "/v1/models%", { authorization: `Bearer ${key}` });
    expect(badUrl).toBe(400);
  });
});

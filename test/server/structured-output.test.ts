import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { z } from "zod";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

const model = loadModel(bundledModelPath);

const person = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 20 },
    age: { type: "integer", minimum: 0, maximum: 150 },
    tribe: { enum: ["Judah", "Levi", "Dan"] },
  },
  required: ["name", "age", "tribe"],
  additionalProperties: false,
};

describe("structured outputs over HTTP on the bundled demo model", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "demo" });
  });
  afterAll(() => s.close(1000));
  const completions = (body: object) => post(`${s.url}/v1/completions`, { prompt: "And God said", ...body });
  const chat = (body: object) =>
    post(`${s.url}/v1/chat/completions`, { messages: [{ role: "user", content: "Who?" }], ...body });

  test("response_format json_schema (openai client, streamed and not): JSON valid for the schema", async () => {
    const validator = z.fromJSONSchema(person as z.core.JSONSchema.JSONSchema);
    const response_format = {
      type: "json_schema" as const,
      json_schema: { name: "person", schema: person, strict: true },
    };
    const whole = await s.client.chat.completions.create({
      model: "demo",
      messages: [{ role: "user", content: "Name a man of Israel" }],
      response_format,
      n: 8,
      seed: 1,
      max_tokens: 200,
    });
    for (const choice of whole.choices) {
      expect(validator.safeParse(JSON.parse(choice.message.content ?? "")).success).toBe(true);
      expect(choice.finish_reason).toBe("stop");
    }
    const stream = await s.client.chat.completions.create({
      model: "demo",
      messages: [{ role: "user", content: "Name a man of Israel" }],
      response_format,
      seed: 2,
      max_tokens: 200,
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(validator.safeParse(JSON.parse(text)).success).toBe(true);
  });

  test("json_object gives a JSON object; structured_outputs regex, choice, grammar and json constrain completions", async () => {
    const object = await chat({ response_format: { type: "json_object" }, max_tokens: 200, seed: 3 });
    const parsed = JSON.parse(object.body.choices[0].message.content);
    expect(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)).toBe(true);

    const cases: [object, (text: string) => boolean][] = [
      [{ regex: "[A-Z][a-z]{2,5} [0-9]{1,3}" }, (t) => /^[A-Z][a-z]{2,5} [0-9]{1,3}$/.test(t)],
      [{ choice: ["Genesis", "Exodus"] }, (t) => t === "Genesis" || t === "Exodus"],
      [
        { grammar: 'root ::= ("amen" | "selah") ("," " " ("amen" | "selah")){0,3}' },
        (t) => /^(amen|selah)(, (amen|selah)){0,3}$/.test(t),
      ],
      [
        { json: JSON.stringify({ type: "array", items: { type: "boolean" }, maxItems: 3 }) },
        (t) => {
          const v = JSON.parse(t);
          return Array.isArray(v) && v.length <= 3 && v.every((b) => typeof b === "boolean");
        },
      ],
    ];
    for (const [structured_outputs, matches] of cases) {
      const r = await completions({ structured_outputs, n: 6, seed: 4, max_tokens: 60 });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      for (const c of r.body.choices) {
        expect(matches(c.text), `${JSON.stringify(structured_outputs)}: ${c.text}`).toBe(true);
        expect(c.finish_reason).toBe("stop");
      }
    }
  });

  test("allowed_token_ids that refuse every choice yield to the grammar; a request beside it is untouched", async () => {
    const [contradicting, plain] = await Promise.all([
      completions({
        max_tokens: 8,
        allowed_token_ids: [5],
        structured_outputs: { choice: ["amen", "selah"] },
      }),
      completions({ max_tokens: 8, temperature: 0 }),
    ]);
    expect(contradicting.status).toBe(200);
    expect(["amen", "selah"]).toContain(contradicting.body.choices[0].text);
    expect(plain.status).toBe(200);
    expect(plain.body.choices[0].finish_reason).toBe("length");
  });

  test("bad schemas, regexes and grammars, and ambiguous requests, are 400s naming the field", async () => {
    const cases: [
      Promise<{ status: number; body: { error: { param: string; message: string } } }>,
      string,
      RegExp,
    ][] = [
      [
        chat({
          response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "foo" } } },
        }),
        "response_format.json_schema.schema",
        /Unsupported type "foo"/,
      ],
      [
        chat({
          response_format: {
            type: "json_schema",
            json_schema: { name: "x", schema: { type: "array", uniqueItems: true } },
          },
        }),
        "response_format.json_schema.schema",
        /unsupported keyword "uniqueItems"/,
      ],
      [
        chat({ response_format: { type: "json_schema", json_schema: { name: "x" } } }),
        "response_format.json_schema.schema",
        /required/,
      ],
      [completions({ structured_outputs: { regex: "(ab" } }), "structured_outputs.regex", /./],
      [
        completions({ structured_outputs: { grammar: "root ::= nothing" } }),
        "structured_outputs.grammar",
        /"nothing" is not defined/,
      ],
      [
        completions({ structured_outputs: { json: "{not json" } }),
        "structured_outputs.json",
        /not valid JSON/,
      ],
      [
        completions({ structured_outputs: { regex: "a", choice: ["b"] } }),
        "structured_outputs",
        /exactly one/,
      ],
      [completions({ structured_outputs: {} }), "structured_outputs", /exactly one/],
      [
        completions({ structured_outputs: { regex: "a" }, response_format: { type: "json_object" } }),
        "structured_outputs",
        /give one of them/,
      ],
    ];
    for (const [request, param, message] of cases) {
      const r = await request;
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.param).toBe(param);
      expect(r.body.error.message).toMatch(message);
    }
    // The server still serves constrained requests after all that.
    const ok = await completions({ structured_outputs: { choice: ["amen"] }, max_tokens: 5 });
    expect(ok.body.choices[0].text).toBe("amen");
  });
});

import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

// ChatML-like, and it refuses a conversation that does not start with a user or system turn.
const template =
  "{% if messages[0].role == 'assistant' %}{{ raise_exception('Conversations must start with a user turn') }}{% endif %}" +
  "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}" +
  "{% if add_generation_prompt %}[assistant]{% endif %}";

describe("chat with a model's Jinja template (random-weight tiny model)", () => {
  let s: TestServer;
  const model = { ...syntheticModel("tiny-test", "f32"), chatTemplate: template };
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "tiny" });
  });
  afterAll(() => s.close(1000));

  test("the prompt is the rendered template, encoded without adding special tokens again", async () => {
    const messages = [
      { role: "system", content: "Be brief." },
      {
        role: "user",
        content: [
          { type: "text", text: "Hello " },
          { type: "text", text: "there" },
        ],
      },
    ];
    const bos = model.tokenizer.bosId === undefined ? "" : model.tokenizer.idToToken(model.tokenizer.bosId);
    const expected = model.tokenizer.encode(`${bos}[system] Be brief.\n[user] Hello there\n[assistant]`, {
      addSpecial: false,
    });
    const r = await post(`${s.url}/tokenize`, { messages });
    expect(r.body.tokens).toEqual(expected);
    const chat = await s.client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Hello there" }],
      max_tokens: 3,
    });
    expect(chat.usage?.prompt_tokens).toBe(
      model.tokenizer.encode(`${bos}[user] Hello there\n[assistant]`, { addSpecial: false }).length,
    );
  });

  test("the template's raise_exception becomes a 400 naming messages", async () => {
    const r = await post(`${s.url}/v1/chat/completions`, {
      messages: [{ role: "assistant", content: "Hi" }],
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "BadRequestError", param: "messages" });
    expect(r.body.error.message).toMatch(/must start with a user turn/);
  });

  test("streamed n = 2: a role chunk per choice, then each choice's content and finish_reason", async () => {
    const stream = await s.client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 5,
      n: 2,
      seed: 1,
      stream: true,
    });
    const roles: number[] = [];
    const finished = new Map<number, string>();
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        if (c.delta.role) roles.push(c.index);
        if (c.finish_reason) finished.set(c.index, c.finish_reason);
      }
    }
    expect(roles).toEqual([0, 1]);
    expect([...finished.keys()].sort()).toEqual([0, 1]);
    for (const reason of finished.values()) expect(["length", "stop"]).toContain(reason);
  });
});

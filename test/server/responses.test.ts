import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { z } from "zod";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { LLM } from "../../src/engine/llm.js";
import { type ChatMessage, renderChat } from "../../src/model/chat-template.js";
import { tensorNames } from "../../src/model/config.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

// POST /v1/responses on the bundled demo model: what it generates must be what the offline engine generates
// for the conversation rendered as chat, and the streamed events must add up to the whole response.

const conversation: ChatMessage[] = [
  { role: "system", content: "You speak as the King James Bible." },
  { role: "user", content: "Tell me of the creation" },
];

/** The response stream's events in the order OpenAI sends them for one text message cut off at max_output_tokens. */
function expectTextEventOrder(types: string[], final: string) {
  const deltas = types.filter((t) => t === "response.output_text.delta").length;
  expect(deltas).toBeGreaterThan(0);
  expect(types).toEqual([
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    ...Array(deltas).fill("response.output_text.delta"),
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    final,
  ]);
}

describe("POST /v1/responses with the openai client and the AI SDK (the bundled demo model)", () => {
  const model = loadModel(bundledModelPath);
  let s: TestServer;
  let llm: LLM;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "demo" });
    llm = await LLM.fromModel(model, { numBlocks: 512 });
  });
  afterAll(() => s.close(1000));

  /** The offline engine's greedy answer to `messages`, rendered with the model's chat template. */
  async function greedyChat(messages: ChatMessage[], maxTokens: number) {
    const promptIds = model.tokenizer.encode(renderChat(model, messages, { addGenerationPrompt: true }));
    const [out] = await llm.generate([promptIds], { temperature: 0, maxTokens });
    return { promptIds, ...out.outputs[0] };
  }

  test("instructions and a string input: the text is the offline engine's for the chat, with usage", async () => {
    const offline = await greedyChat(conversation, 30);
    const r = await s.client.responses.create({
      model: "demo",
      instructions: conversation[0].content,
      input: conversation[1].content,
      max_output_tokens: 30,
      temperature: 0,
    });
    expect(r.id).toMatch(/^resp_/);
    expect(r.object).toBe("response");
    expect(r.model).toBe("demo");
    expect(r.output_text).toBe(offline.text);
    expect(offline.finishReason).toBe("length");
    expect(r.status).toBe("incomplete");
    expect(r.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(r.output).toHaveLength(1);
    expect(r.output[0]).toMatchObject({
      type: "message",
      role: "assistant",
      status: "incomplete",
      content: [{ type: "output_text", text: offline.text, annotations: [] }],
    });
    expect(r.output[0].id).toMatch(/^msg_/);
    expect(r.usage).toMatchObject({
      input_tokens: offline.promptIds.length,
      output_tokens: 30,
      total_tokens: offline.promptIds.length + 30,
      output_tokens_details: { reasoning_tokens: 0 },
    });
    expect(r).toMatchObject({ instructions: conversation[0].content, store: false, max_output_tokens: 30 });
  });

  test("a list of input items: every message form becomes its chat message", async () => {
    const messages: ChatMessage[] = [
      { role: "developer", content: "Answer in verse." },
      { role: "user", content: "In the beginning" },
      { role: "assistant", content: "God created the heaven and the earth." },
      { role: "user", content: "And then?" },
    ];
    const offline = await greedyChat(messages, 20);
    const r = await s.client.responses.create({
      model: "demo",
      input: [
        { role: "developer", content: "Answer in verse." },
        {
          type: "message",
          role: "user",
          content: [
            { type: "input_text", text: "In the " },
            { type: "input_text", text: "beginning" },
          ],
        },
        // A previous response's output item, sent back as it came.
        {
          type: "message",
          id: "msg_1",
          role: "assistant",
          status: "completed",
          content: [{ type: "output_text", text: "God created the heaven and the earth.", annotations: [] }],
        },
        { role: "user", content: "And then?" },
      ],
      max_output_tokens: 20,
      temperature: 0,
    });
    expect(r.output_text).toBe(offline.text);
    expect(r.usage?.input_tokens).toBe(offline.promptIds.length);
  });

  test("function_call and function_call_output items are the chat's assistant tool_calls and tool messages", async () => {
    const call = {
      id: "call_1",
      type: "function",
      function: { name: "get_weather", arguments: '{"city":"Ur"}' },
    };
    const chat = await s.client.chat.completions.create({
      model: "demo",
      messages: [
        { role: "user", content: "Weather in Ur?" },
        { role: "assistant", content: "Let me look.", tool_calls: [call] },
        { role: "tool", tool_call_id: "call_1", content: "Hot and dry." },
      ] as OpenAI.ChatCompletionMessageParam[],
      max_completion_tokens: 20,
      temperature: 0,
    });
    const r = await s.client.responses.create({
      model: "demo",
      input: [
        { role: "user", content: "Weather in Ur?" },
        { role: "assistant", content: "Let me look." },
        { type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Ur"}' },
        { type: "function_call_output", call_id: "call_1", output: "Hot and dry." },
      ],
      max_output_tokens: 20,
      temperature: 0,
    });
    expect(r.output_text).toBe(chat.choices[0].message.content);
    expect(r.usage?.input_tokens).toBe(chat.usage?.prompt_tokens);
  });

  test("function tools are rendered into the prompt as chat renders them; tool_choice names an offered function", async () => {
    const parameters = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
    const chat = await s.client.chat.completions.create({
      model: "demo",
      messages: [{ role: "user", content: "Weather in Ur?" }],
      tools: [
        { type: "function", function: { name: "get_weather", description: "The weather", parameters } },
      ],
      tool_choice: "none",
      max_completion_tokens: 10,
      temperature: 0,
    });
    const r = await s.client.responses.create({
      model: "demo",
      input: "Weather in Ur?",
      tools: [
        { type: "function", name: "get_weather", description: "The weather", parameters, strict: true },
      ],
      tool_choice: "none",
      max_output_tokens: 10,
      temperature: 0,
    });
    expect(r.usage?.input_tokens).toBe(chat.usage?.prompt_tokens);
    const withoutTools = await s.client.responses.create({
      model: "demo",
      input: "Weather in Ur?",
      max_output_tokens: 1,
    });
    expect(r.usage?.input_tokens).toBeGreaterThan(withoutTools.usage?.input_tokens ?? Infinity);
    expect(r.output_text).toBe(chat.choices[0].message.content);
    expect(r.tools).toMatchObject([{ type: "function", name: "get_weather", parameters, strict: true }]);
    const missing = await post(`${s.url}/v1/responses`, {
      input: "Hi",
      tools: [{ type: "function", name: "get_weather", parameters }],
      tool_choice: { type: "function", name: "get_time" },
    });
    expect(missing.status).toBe(400);
    expect(missing.body.error.param).toBe("tool_choice");
  });

  test("stream: true sends OpenAI's events in order, numbered, and the deltas add up to the whole response", async () => {
    const request = { model: "demo", input: "In the beginning", max_output_tokens: 25, temperature: 0 };
    const whole = await s.client.responses.create(request);
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of await s.client.responses.create({ ...request, stream: true }))
      events.push(event);
    expectTextEventOrder(
      events.map((e) => e.type),
      "response.incomplete",
    );
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : []));
    expect(deltas.join("")).toBe(whole.output_text);
    const done = events.find((e) => e.type === "response.output_text.done");
    expect(done?.type === "response.output_text.done" && done.text).toBe(whole.output_text);
    const created = events[0].type === "response.created" ? events[0].response : undefined;
    expect(created).toMatchObject({ status: "in_progress", output: [], model: "demo" });
    const last = events.at(-1);
    const final = last?.type === "response.incomplete" ? last.response : undefined;
    expect(final?.id).toBe(created?.id);
    expect(final?.output).toEqual([{ ...whole.output[0], id: final?.output[0].id }]);
    expect(final?.usage).toEqual(whole.usage);
    // Every item event points at the one message item.
    const itemIds = events.flatMap((e) => ("item_id" in e ? [e.item_id] : "item" in e ? [e.item.id] : []));
    expect(new Set(itemIds)).toEqual(new Set([final?.output[0].id]));
  });

  test("on the wire: each event's name on its event: line, no [DONE] marker", async () => {
    const res = await fetch(`${s.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: "Hi", max_output_tokens: 3, stream: true }),
    });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const blocks = (await res.text()).split("\n\n").filter((b) => b !== "");
    expect(blocks.length).toBeGreaterThan(8);
    for (const block of blocks) {
      const [eventLine, dataLine, ...rest] = block.split("\n");
      expect(rest).toEqual([]);
      const name = eventLine.replace(/^event: /, "");
      expect(JSON.parse(dataLine.replace(/^data: /, "")).type).toBe(name);
    }
  });

  test("client.responses.stream: the SDK's accumulated final response equals the non-streamed one", async () => {
    const request = { model: "demo", input: "And God said", max_output_tokens: 20, temperature: 0 };
    const whole = await s.client.responses.create(request);
    const snapshots: string[] = [];
    const runner = s.client.responses.stream(request);
    runner.on("response.output_text.delta", (e) => snapshots.push(e.snapshot));
    const final = await runner.finalResponse();
    expect(final.output).toMatchObject([{ type: "message", content: [{ text: whole.output_text }] }]);
    expect(snapshots.at(-1)).toBe(whole.output_text);
  });

  test("usage counts the prompt tokens served from the prefix cache", async () => {
    const request = {
      model: "demo",
      input: "Blessed are the meek: for they shall inherit the earth.".repeat(3),
    };
    const first = await s.client.responses.create({ ...request, max_output_tokens: 2 });
    const second = await s.client.responses.create({ ...request, max_output_tokens: 2 });
    expect(first.usage?.input_tokens_details.cached_tokens).toBe(0);
    const cached = second.usage?.input_tokens_details.cached_tokens ?? 0;
    expect(cached).toBeGreaterThan(0);
    expect(cached).toBeLessThan(second.usage?.input_tokens ?? 0);
  });

  test("the AI SDK's default OpenAI provider (its Responses path): generateText and streamText", async () => {
    const openai = createOpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
    const offline = await greedyChat(conversation, 20);
    const request = {
      model: openai("demo"),
      system: conversation[0].content,
      prompt: conversation[1].content,
      maxOutputTokens: 20,
      temperature: 0,
    };
    const generated = await generateText(request);
    expect(generated.text).toBe(offline.text);
    expect(generated.finishReason).toBe("length");
    expect(generated.usage).toMatchObject({ inputTokens: offline.promptIds.length, outputTokens: 20 });
    expect(generated.response.id).toMatch(/^resp_/);

    const streamed = streamText(request);
    let text = "";
    for await (const piece of streamed.textStream) text += piece;
    expect(text).toBe(offline.text);
    expect(await streamed.finishReason).toBe("length");
  });

  test("the AI SDK's openai.responses(model) sends an assistant turn back as text", async () => {
    const openai = createOpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
    const messages: ChatMessage[] = [
      { role: "user", content: "In the beginning" },
      { role: "assistant", content: "God created the heaven and the earth." },
      { role: "user", content: "And then?" },
    ];
    const offline = await greedyChat(messages, 15);
    const generated = await generateText({
      model: openai.responses("demo"),
      messages: messages.map((m) => ({ role: m.role as "user" | "assistant", content: m.content })),
      maxOutputTokens: 15,
      temperature: 0,
    });
    expect(generated.text).toBe(offline.text);
  });

  test("the AI SDK refers to its own earlier output by id unless told store: false", async () => {
    const openai = createOpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
    // An assistant turn as the AI SDK keeps it from an earlier response: its text with the item's id.
    const messages = [
      { role: "user" as const, content: "In the beginning" },
      {
        role: "assistant" as const,
        content: [
          {
            type: "text" as const,
            text: "God created the heaven and the earth.",
            providerOptions: { openai: { itemId: "msg_1" } },
          },
        ],
      },
      { role: "user" as const, content: "And then?" },
    ];
    const request = {
      model: openai.responses("demo"),
      messages,
      maxOutputTokens: 15,
      temperature: 0,
      maxRetries: 0,
    };
    await expect(generateText(request)).rejects.toThrow(/item_reference.*store to false/);
    const stateless = await generateText({ ...request, providerOptions: { openai: { store: false } } });
    const offline = await greedyChat(
      [
        { role: "user", content: "In the beginning" },
        { role: "assistant", content: "God created the heaven and the earth." },
        { role: "user", content: "And then?" },
      ],
      15,
    );
    expect(stateless.text).toBe(offline.text);
  });

  test("stateless: previous_response_id and store: true are 400s that say nothing is stored", async () => {
    for (const [field, value] of [
      ["previous_response_id", "resp_123"],
      ["store", true],
    ] as const) {
      const err = await s.client.responses
        .create({ model: "demo", input: "Hi", [field]: value })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(field);
      expect((err as Error).message).toMatch(/does not store responses/);
    }
    const stored = await post(`${s.url}/v1/responses`, {
      input: [{ type: "item_reference", id: "msg_1" }],
    });
    expect(stored.status).toBe(400);
    expect(stored.body.error.param).toBe("input.0.type");
    expect(stored.body.error.message).toMatch(/does not store responses/);
    const notStored = await post(`${s.url}/v1/responses`, {
      input: "Hi",
      store: false,
      max_output_tokens: 1,
    });
    expect(notStored.status).toBe(200);
    expect(notStored.body.store).toBe(false);
  });

  test("every field, item, part or tool vellum does not implement is a 400 naming it", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ input: "Hi", reasoning: { effort: "low" } }, "reasoning", /does not implement/],
      [{ input: "Hi", text: { verbosity: "low" } }, "text.verbosity", /does not implement/],
      [
        { input: "Hi", tools: [{ type: "web_search" }] },
        "tools.0.type",
        /function tools only, not "web_search"/,
      ],
      [
        { input: [{ role: "user", content: [{ type: "input_image", image_url: "https://x/y.png" }] }] },
        "input.0.content.0.type",
        /only text parts.*"input_image"/,
      ],
      [{ input: [{ type: "reasoning", summary: [] }] }, "input.0.type", /not "reasoning"/],
      [{ input: [{ role: "user", content: "Hi", name: "x" }] }, "input.0.name", /does not implement/],
      [
        { input: [{ type: "function_call", call_id: "c", name: "f", arguments: "[1]" }] },
        "input.0.arguments",
        /JSON text of an object/,
      ],
      [{ input: [] }, "input", /at least one item/],
      [{ input: 3 }, "input", /a string or a list of input items/],
      [{ input: "Hi", max_output_tokens: 0 }, "max_output_tokens", /1/],
      [{ input: "Hi", temperature: -1 }, "temperature", /temperature/],
      [{ input: "Hi", text: { format: { type: "yaml" } } }, "text.format.type", /json_schema/],
      [
        { input: [{ type: "function_call_output", call_id: "call_9", output: "42" }] },
        "input.0.call_id",
        /no function_call with call_id "call_9"/,
      ],
    ];
    for (const [body, param, message] of cases) {
      const r = await post(`${s.url}/v1/responses`, body);
      expect({ param: r.body.error?.param, status: r.status }).toEqual({ param, status: 400 });
      expect(r.body.error.message).toMatch(message);
    }
    const unknownModel = await post(`${s.url}/v1/responses`, { model: "gpt-5", input: "Hi" });
    expect(unknownModel.status).toBe(404);
  });
});

/**
 * tiny-test with random weights but for what decides the next token: no layer adds anything, so the last
 * hidden state is the final norm of an all-ones embedding (all positive), and the output layer scores only
 * EOS, so every generation ends with EOS at once.
 */
function eosFirstModel(): LoadedModel {
  const model = syntheticModel("tiny-test", "f32");
  const eos = model.tokenizer.eosId as number;
  const fillRows = (name: string, valueOfRow: (row: number) => number) => {
    const tensor = model.tensors.get(name);
    if (tensor?.dtype !== "f32") throw new Error(`${name} is not f32`);
    const [rows, width] = tensor.shape;
    const values = new Float32Array(rows * width);
    for (let r = 0; r < rows; r++) values.fill(valueOfRow(r), r * width, (r + 1) * width);
    model.tensors.set(name, { ...tensor, data: new Uint8Array(values.buffer) });
  };
  for (let l = 0; l < model.config.nLayers; l++) {
    fillRows(tensorNames.wo(l), () => 0);
    fillRows(tensorNames.ffnDown(l), () => 0);
  }
  fillRows(tensorNames.tokenEmbedding, () => 1);
  fillRows(tensorNames.output, (row) => (row === eos ? 1 : 0));
  return model;
}

describe("POST /v1/responses that ends with EOS (a model that writes EOS first)", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(eosFirstModel(), {}, { servedModelName: "eos" });
  });
  afterAll(() => s.close(1000));

  test("the response is completed, with one empty message, streamed as response.completed", async () => {
    const whole = await s.client.responses.create({ model: "eos", input: "Hi", max_output_tokens: 8 });
    expect(whole).toMatchObject({ status: "completed", incomplete_details: null, output_text: "" });
    expect(whole.completed_at).toBeGreaterThanOrEqual(whole.created_at);
    expect(whole.output).toMatchObject([
      { type: "message", status: "completed", content: [{ type: "output_text", text: "" }] },
    ]);
    expect(whole.usage?.output_tokens).toBe(1);
    const types: string[] = [];
    let final: OpenAI.Responses.Response | undefined;
    for await (const e of await s.client.responses.create({ model: "eos", input: "Hi", stream: true })) {
      types.push(e.type);
      if (e.type === "response.completed") final = e.response;
    }
    expect(types).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(final?.status).toBe("completed");
  });
});

/**
 * Constrained output on the demo model, which never writes JSON or a call by itself: text.format and forced
 * function calls hold only because the grammar allows nothing else; each result is checked against its schema
 * with zod (the independent check). Prompts that list tools are longer than the 256 tokens the demo model was
 * trained on, so its context is raised (what it writes past them is noise, constrained all the same).
 */
describe("POST /v1/responses with text.format and forced function calls (the demo model)", () => {
  const demo = loadModel(bundledModelPath);
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(
      { ...demo, config: { ...demo.config, maxSeqLen: 2048 } },
      {},
      { servedModelName: "demo" },
    );
  });
  afterAll(() => s.close(1000));

  const person = z.strictObject({ name: z.string().max(12), age: z.number().int().min(0).max(200) });
  const personFormat = {
    type: "json_schema" as const,
    name: "person",
    strict: true,
    schema: {
      type: "object",
      properties: {
        name: { type: "string", maxLength: 12 },
        age: { type: "integer", minimum: 0, maximum: 200 },
      },
      required: ["name", "age"],
      additionalProperties: false,
    },
  };
  const cityArgs = z.strictObject({ city: z.string().max(24) });
  const weather = {
    type: "function" as const,
    name: "get_weather",
    description: "The weather in a city",
    strict: true,
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 24 } },
      required: ["city"],
      additionalProperties: false,
    },
  };
  const time = {
    type: "function" as const,
    name: "get_time",
    strict: true,
    parameters: { type: "object", properties: {} },
  };

  test("text.format json_schema: the text is JSON valid for the schema, whole and streamed", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await s.client.responses.create({
        model: "demo",
        input: "Who was Abraham?",
        text: { format: personFormat },
        max_output_tokens: 100,
      });
      expect(r.status).toBe("completed");
      expect(person.safeParse(JSON.parse(r.output_text)).success).toBe(true);
    }
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    const stream = await s.client.responses.create({
      model: "demo",
      input: "Who was Moses?",
      text: { format: personFormat },
      max_output_tokens: 100,
      stream: true,
    });
    for await (const e of stream) events.push(e);
    const text = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : [])).join("");
    expect(person.safeParse(JSON.parse(text)).success).toBe(true);
    const last = events.at(-1);
    expect(last?.type === "response.completed" && last.response.output).toMatchObject([
      { type: "message", content: [{ text }] },
    ]);
  });

  test("text.format json_object: the text opens a JSON object, which the model alone never does", async () => {
    const request = { model: "demo", input: "Who was Abraham?", max_output_tokens: 20, temperature: 0 };
    const free = await s.client.responses.create(request);
    const json = await s.client.responses.create({ ...request, text: { format: { type: "json_object" } } });
    expect(free.output_text.trimStart().startsWith("{")).toBe(false);
    expect(json.output_text.startsWith("{")).toBe(true);
  });

  test("a schema that does not compile is a 400 naming text.format.schema", async () => {
    const r = await post(`${s.url}/v1/responses`, {
      input: "Hi",
      text: {
        format: {
          type: "json_schema",
          name: "bad",
          schema: { type: "object", properties: { a: { type: 3 } } },
        },
      },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe("text.format.schema");
  });
  test("tool_choice required or a named function: function_call items whose arguments validate", async () => {
    for (const toolChoice of ["required", { type: "function", name: "get_weather" }] as const) {
      const r = await s.client.responses.create({
        model: "demo",
        input: "What is the weather in Bethlehem?",
        tools: [weather, time],
        tool_choice: toolChoice,
        parallel_tool_calls: false,
        max_output_tokens: 200,
      });
      expect(r.status).toBe("completed");
      expect(r.output).toHaveLength(1);
      const [call] = r.output;
      expect(call).toMatchObject({ type: "function_call", status: "completed" });
      if (call.type !== "function_call") throw new Error("not a call");
      expect(call.id).toMatch(/^fc_/);
      if (toolChoice !== "required") expect(call.name).toBe("get_weather");
      const args = JSON.parse(call.arguments);
      expect((call.name === "get_weather" ? cityArgs : z.strictObject({})).safeParse(args).success).toBe(
        true,
      );
    }
  });

  test("a streamed forced call: its argument deltas add up to the call, which goes back as input", async () => {
    const input: OpenAI.Responses.ResponseInputItem[] = [{ role: "user", content: "Weather in Bethlehem?" }];
    const stream = await s.client.responses.create({
      model: "demo",
      input,
      tools: [weather],
      tool_choice: "required",
      parallel_tool_calls: false,
      max_output_tokens: 200,
      stream: true,
    });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of stream) events.push(e);
    const last = events.at(-1);
    if (last?.type !== "response.completed") throw new Error(`ended with ${last?.type}`);
    const [call] = last.response.output;
    if (call?.type !== "function_call") throw new Error("no call");
    const types = events.map((e) => e.type);
    expect(types.slice(0, 3)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
    ]);
    expect(types.slice(-3)).toEqual([
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const deltas = events.flatMap((e) =>
      e.type === "response.function_call_arguments.delta" ? [e.delta] : [],
    );
    expect(deltas.join("")).toBe(call.arguments);
    expect(cityArgs.safeParse(JSON.parse(call.arguments)).success).toBe(true);

    // The next turn: the call as it came, and its output.
    const next = await s.client.responses.create({
      model: "demo",
      input: [...input, call, { type: "function_call_output", call_id: call.call_id, output: "Sunny." }],
      tools: [weather],
      max_output_tokens: 10,
    });
    expect(next.output).toMatchObject([{ type: "message" }]);
    expect(next.usage?.input_tokens).toBeGreaterThan(last.response.usage?.input_tokens ?? Infinity);
  });
  test("a forced call with text.format, or parameters that do not compile, is a 400 naming the field", async () => {
    const both = await post(`${s.url}/v1/responses`, {
      input: "Hi",
      tools: [weather],
      tool_choice: "required",
      text: { format: { type: "json_object" } },
    });
    expect(both.status).toBe(400);
    expect(both.body.error.param).toBe("tool_choice");
    const bad = await post(`${s.url}/v1/responses`, {
      input: "Hi",
      tools: [weather, { ...time, parameters: { type: "object", properties: { at: { type: 3 } } } }],
      tool_choice: { type: "function", name: "get_time" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe("tools[1].parameters");
    expect(bad.body.error.message).toMatch(/^tools\[1\]\.parameters: /);
    const twice = await post(`${s.url}/v1/responses`, { input: "Hi", tools: [weather, weather] });
    expect(twice.body.error.param).toBe("tools[1].name");
  });
});

test("a response that shutdown cuts short ends cancelled, its text marked incomplete", async () => {
  const s = await startServer(loadModel(bundledModelPath), {}, { servedModelName: "demo" });
  const stream = await s.client.responses.create({ model: "demo", input: "In the beginning", stream: true });
  const events: OpenAI.Responses.ResponseStreamEvent[] = [];
  let closed: Promise<void> | undefined;
  for await (const e of stream) {
    events.push(e);
    // Shutdown with no grace, once the text has begun: the engine aborts the generation.
    if (e.type === "response.output_text.delta") closed ??= s.close(0);
  }
  await closed;
  const last = events.at(-1);
  if (last?.type !== "response.incomplete") throw new Error(`ended with ${last?.type}`);
  expect(last.response).toMatchObject({ status: "cancelled", incomplete_details: null });
  expect(last.response.output).toMatchObject([{ type: "message", status: "incomplete" }]);
  expect(last.response.usage?.output_tokens).toBeLessThan(200);
});

import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { ByteLevelBpeTokenizer } from "../../src/model/tokenizer/byte-bpe.js";
import { TokenType } from "../../src/model/tokenizer/tokenizer.js";
import { hermesFormat } from "../../src/model/tool-calls/hermes.js";
import { llama3JsonFormat } from "../../src/model/tool-calls/llama3-json.js";
import { mistralFormat } from "../../src/model/tool-calls/mistral.js";
import {
  chatTools,
  openAiToolCall,
  parseToolCalls,
  ToolCallStreams,
  toolCallDelta,
  toolSamplingParams,
} from "../../src/server/chat-tools.js";
import { chatmlTemplate, ollamaTemplate } from "../chat-templates.js";
import { post, startServer, type TestServer } from "../server-helpers.js";
import { tinyByteLevelSpec } from "../tokenizer-fixtures.js";

const weather = {
  type: "function" as const,
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } } },
  },
};

/** The demo model's plain prompt with `weather` offered, written out by hand (see ChatTemplate). */
const toolsLine =
  "System: You may call these functions:\n" +
  "get_weather(city?: string)\n" +
  'Call one as <tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call>\n';

describe("tools on the demo model (plain fallback, Hermes' format)", () => {
  const model = loadModel(bundledModelPath);
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "demo" });
  });
  afterAll(() => s.close(1000));
  const promptTokens = (text: string) => model.tokenizer.encode(text, { addSpecial: true }).length;

  test("the tools are in the prompt; a reply without calls is plain content", async () => {
    const r = await s.client.chat.completions.create({
      model: "demo",
      messages: [{ role: "user", content: "And God said" }],
      tools: [weather],
      max_tokens: 8,
      temperature: 0,
    });
    expect(r.usage?.prompt_tokens).toBe(promptTokens(`${toolsLine}User: And God said\nAssistant:`));
    expect(r.choices[0].message.tool_calls).toBeUndefined();
    expect(typeof r.choices[0].message.content).toBe("string");
    expect(r.choices[0].finish_reason).toBe("length");
  });

  test("streamed with tools, the content chunks add up to the non-streamed content", async () => {
    const request = {
      model: "demo",
      messages: [{ role: "user" as const, content: "In the beginning" }],
      tools: [weather],
      max_tokens: 12,
      temperature: 0,
    };
    const whole = await s.client.chat.completions.create(request);
    let content = "";
    let finish: string | null = null;
    for await (const chunk of await s.client.chat.completions.create({ ...request, stream: true })) {
      content += chunk.choices[0]?.delta.content ?? "";
      expect(chunk.choices[0]?.delta.tool_calls).toBeUndefined();
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(content).toBe(whole.choices[0].message.content);
    expect(finish).toBe(whole.choices[0].finish_reason);
  });

  /** Functions short enough for the demo model's 256-token context, tools list and calls included. */
  const lamp = {
    type: "function" as const,
    function: {
      name: "lamp",
      parameters: {
        type: "object",
        properties: { on: { type: "boolean" } },
        required: ["on"],
        additionalProperties: false,
      },
    },
  };
  const clock = { type: "function" as const, function: { name: "clock" } };
  const bell = { type: "function" as const, function: { name: "bell" } };

  test("tool_choice required: the grammar forces a call; streamed deltas add up to the non-streamed tool_calls", async () => {
    const request = {
      model: "demo",
      messages: [{ role: "user" as const, content: "Ring" }],
      tools: [clock, bell],
      tool_choice: "required" as const,
      parallel_tool_calls: false,
      temperature: 0,
    };
    const whole = await s.client.chat.completions.create(request);
    const [choice] = whole.choices;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls ?? [];
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call.id).toMatch(/^call_/);
    expect(call.type === "function" && ["clock", "bell"].includes(call.function.name)).toBe(true);
    expect(call.type === "function" && JSON.parse(call.function.arguments)).toEqual({});
    const deltas: Record<string, unknown>[] = [];
    let finish: string | null = null;
    for await (const chunk of await s.client.chat.completions.create({ ...request, stream: true })) {
      if (chunk.choices[0]) deltas.push(chunk.choices[0].delta as Record<string, unknown>);
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    const streamed = accumulate(deltas);
    expect(streamed.content).toBe("");
    expect(streamed.calls.map((c) => ({ ...c, id: "" }))).toEqual(calls.map((c) => ({ ...c, id: "" })));
    expect(finish).toBe("tool_calls");
  });

  test.each([false, true])(
    "a named function is called once, its arguments valid for its parameters (parallel_tool_calls %s)",
    async (parallel) => {
      for (const seed of [1, 2, 3]) {
        const r = await s.client.chat.completions.create({
          model: "demo",
          messages: [{ role: "user", content: "Light" }],
          tools: [lamp],
          tool_choice: { type: "function", function: { name: "lamp" } },
          parallel_tool_calls: parallel,
          temperature: 1,
          seed,
        });
        expect(r.choices[0].finish_reason).toBe("tool_calls");
        const calls = r.choices[0].message.tool_calls ?? [];
        expect(calls).toHaveLength(1);
        const args = calls[0].type === "function" ? JSON.parse(calls[0].function.arguments) : undefined;
        expect(Object.keys(args)).toEqual(["on"]);
        expect(typeof args.on).toBe("boolean");
      }
    },
  );

  test("tool_choice none: the tools are offered but no call is parsed", async () => {
    const r = await s.client.chat.completions.create({
      model: "demo",
      messages: [{ role: "user", content: "Light" }],
      tools: [lamp],
      tool_choice: "none",
      max_tokens: 4,
    });
    expect(r.choices[0].message.tool_calls).toBeUndefined();
  });

  test("a history with an assistant turn of calls (content null) and role tool results is accepted", async () => {
    const r = await s.client.chat.completions.create({
      model: "demo",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city": "Paris"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "22 C" },
      ],
      max_tokens: 4,
    });
    expect(r.usage?.prompt_tokens).toBe(
      promptTokens(
        `User: Weather in Paris?\nAssistant: <tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>\nTool: 22 C\nAssistant:`,
      ),
    );
  });

  test.each([
    [{ tools: [weather], tool_choice: { type: "function", function: { name: "get_time" } } }, "tool_choice"],
    [{ tool_choice: "required" }, "tool_choice"],
    [
      { tools: [{ ...weather, function: { ...weather.function, name: "get weather" } }] },
      "tools.0.function.name",
    ],
    [{ tools: [weather, weather] }, "tools[1].function.name"],
    [{ tools: [{ ...weather, function: { ...weather.function, returns: {} } }] }, "tools.0.function.returns"],
    [
      { tools: [{ ...weather, function: { ...weather.function, description: "stop at </s>" } }] },
      "tools[0].function.description",
    ],
    [
      {
        messages: [
          { role: "user", content: "Hi" },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{city" } }],
          },
        ],
      },
      "messages[1].tool_calls[0].function.arguments",
    ],
    [{ messages: [{ role: "tool", content: "22 C" }] }, "messages.0.tool_call_id"],
    [{ tools: [weather], tool_choice: "required", response_format: { type: "json_object" } }, "tool_choice"],
    [
      {
        tools: [
          {
            ...weather,
            function: { ...weather.function, parameters: { type: "object", minProperties: "x" } },
          },
        ],
        tool_choice: { type: "function", function: { name: "get_weather" } },
      },
      "tools[0].function.parameters",
    ],
  ])("bad tools: %j is a 400 naming %s", async (fields, param) => {
    const r = await post(`${s.url}/v1/chat/completions`, {
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 1,
      ...fields,
    });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe(param);
    expect(r.body.error.message).toContain(param);
  });
});

test("a model whose template has no tool-call format refuses tools with a 400 naming tools", async () => {
  const s = await startServer({ ...syntheticModel("tiny-test", "f32"), chatTemplate: chatmlTemplate });
  try {
    const r = await post(`${s.url}/v1/chat/completions`, {
      messages: [{ role: "user", content: "Hi" }],
      tools: [weather],
    });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe("tools");
  } finally {
    await s.close(1000);
  }
});

/** OpenAI's streamed tool_calls deltas added up by index, as its clients do. */
function accumulate(deltas: Record<string, unknown>[]) {
  let content = "";
  const calls: { id: string; type: string; function: { name: string; arguments: string } }[] = [];
  for (const delta of deltas) {
    if (typeof delta.content === "string") content += delta.content;
    for (const d of (delta.tool_calls ?? []) as {
      index: number;
      id?: string;
      type?: string;
      function: { name?: string; arguments: string };
    }[]) {
      calls[d.index] ??= {
        id: d.id ?? "",
        type: d.type ?? "",
        function: { name: d.function.name ?? "", arguments: "" },
      };
      calls[d.index].function.arguments += d.function.arguments;
    }
  }
  return { content, calls };
}

test("streamed tool_calls deltas add up to the non-streamed tool_calls, however the text arrives", () => {
  const outputs = [
    [
      hermesFormat,
      'Checking.\n<tool_call>\n{"name": "a", "arguments": {"x": [1, "}"]}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>',
    ],
    [
      llama3JsonFormat,
      '<|python_tag|>{"name": "a", "parameters": {"q": "é ü"}}; {"name": "b", "parameters": {}}',
    ],
    [
      mistralFormat,
      '[TOOL_CALLS] [{"name": "a", "arguments": {"n": 1.5}}, {"name": "b", "arguments": {"s": "]"}}]',
    ],
  ] as const;
  fc.assert(
    fc.property(
      fc.constantFrom(...outputs),
      fc.array(fc.nat(), { maxLength: 10 }),
      ([format, text], cuts) => {
        const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const pieces = [0, ...at].map((start, i) => text.slice(start, at[i] ?? text.length));
        const streams = new ToolCallStreams(format);
        const deltas = pieces.flatMap((piece, i) =>
          streams.push(0, piece, i === pieces.length - 1).map(toolCallDelta),
        );
        const streamed = accumulate(deltas);
        const whole = parseToolCalls(format, text);
        const withoutIds = <T extends { id: string }>(calls: T[]) => calls.map((c) => ({ ...c, id: "" }));
        expect(withoutIds(streamed.calls)).toEqual(withoutIds(whole.toolCalls.map(openAiToolCall)));
        expect(streamed.content).toBe(whole.content);
        expect(whole.toolCalls).toHaveLength(2);
        expect(streams.finishReason(0, "stop")).toBe("tool_calls");
      },
    ),
    { numRuns: 300 },
  );
});

test("a format whose marker is a special token keeps special tokens' text in the output, others leave it", () => {
  const spec = tinyByteLevelSpec();
  const tokenizer = new ByteLevelBpeTokenizer({
    ...spec,
    tokens: [...spec.tokens, "<|python_tag|>"],
    tokenTypes: [...(spec.tokenTypes ?? []), TokenType.control],
  });
  const llama = chatTools(ollamaTemplate("library/llama3.1:8b"), { tools: [weather] });
  const qwen = chatTools(ollamaTemplate("library/qwen2.5:0.5b"), { tools: [weather] });
  expect(toolSamplingParams(llama, tokenizer)).toEqual({ skipSpecialTokens: false });
  expect(toolSamplingParams(qwen, tokenizer)).toEqual({});
  const none = chatTools(ollamaTemplate("library/llama3.1:8b"), { tools: [weather], tool_choice: "none" });
  expect(toolSamplingParams(none, tokenizer)).toEqual({});
});

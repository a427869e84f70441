import { afterAll, describe, expect, test } from "vitest";
import { StructuredOutputs } from "../../src/engine/structured-output/structured-outputs.js";
import { ByteLevelBpeTokenizer } from "../../src/model/tokenizer/byte-bpe.js";
import { hermesFormat } from "../../src/model/tool-calls/hermes.js";
import { llama3JsonFormat } from "../../src/model/tool-calls/llama3-json.js";
import { mistralFormat } from "../../src/model/tool-calls/mistral.js";
import {
  collectToolCallEvents,
  type ToolCallFormat,
  type ToolDefinition,
} from "../../src/model/tool-calls/tool-call.js";
import { tinyByteLevelSpec } from "../tokenizer-fixtures.js";

// What a forced call's grammar lets the model write, checked with XGrammar at a byte-level vocabulary (each
// text is walked token by token, then the end of text), and read back by the same format's parser.
const tokenizer = new ByteLevelBpeTokenizer(tinyByteLevelSpec());
const outputs = new StructuredOutputs(tokenizer, tokenizer.vocabSize);
afterAll(() => outputs.close());

const lamp: ToolDefinition = {
  name: "lamp",
  parameters: {
    type: "object",
    properties: { on: { type: "boolean" }, room: { enum: ["hall", "attic"] } },
    required: ["on"],
  },
};
const clock: ToolDefinition = { name: "clock" };

async function accepts(format: ToolCallFormat, parallel: boolean, text: string): Promise<boolean> {
  const matcher = (await outputs.compile(format.forcedCalls([lamp, clock], parallel))).createMatcher();
  try {
    for (const id of [...tokenizer.encode(text, { addSpecial: false }), tokenizer.eosId as number]) {
      await matcher.ready();
      if (!matcher.acceptToken(id)) return false;
    }
    return matcher.isTerminated();
  } finally {
    matcher.dispose();
  }
}

function callsIn(format: ToolCallFormat, text: string) {
  const parser = format.createParser();
  const { content, toolCalls } = collectToolCallEvents([...parser.push(text), ...parser.finish()]);
  return { content, calls: toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]) };
}

/** Per format: one call, two calls, a call whose arguments break lamp's schema, and plain text. */
const texts: [ToolCallFormat, { one: string; two: string; badArguments: string }][] = [
  [
    hermesFormat,
    {
      one: '<tool_call>\n{"name": "lamp", "arguments": {"on": true, "room": "attic"}}\n</tool_call>',
      two: '<tool_call>\n{"name": "clock", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "lamp", "arguments": {"on": false}}\n</tool_call>',
      badArguments: '<tool_call>\n{"name": "lamp", "arguments": {"on": "yes"}}\n</tool_call>',
    },
  ],
  [
    llama3JsonFormat,
    {
      one: '{"name": "lamp", "parameters": {"on": true, "room": "attic"}}',
      two: '{"name": "clock", "parameters": {}}; {"name": "lamp", "parameters": {"on": false}}',
      badArguments: '{"name": "lamp", "parameters": {"room": "hall"}}',
    },
  ],
  [
    mistralFormat,
    {
      one: '[TOOL_CALLS][{"name": "lamp", "arguments": {"on": true, "room": "attic"}}]',
      two: '[TOOL_CALLS][{"name": "clock", "arguments": {}}, {"name": "lamp", "arguments": {"on": false}}]',
      badArguments: '[TOOL_CALLS][{"name": "lamp", "arguments": {"on": true, "room": "cellar"}}]',
    },
  ],
];

describe.each(texts)("forced calls in $name's format", (format, { one, two, badArguments }) => {
  test("one call of an offered function, with arguments valid for its parameters, and the parser reads it", async () => {
    expect(await accepts(format, false, one)).toBe(true);
    expect(callsIn(format, one)).toEqual({ content: "", calls: [["lamp", { on: true, room: "attic" }]] });
  });

  test("several calls only when parallel", async () => {
    expect(await accepts(format, true, two)).toBe(true);
    expect(await accepts(format, false, two)).toBe(false);
    expect(callsIn(format, two)).toEqual({
      content: "",
      calls: [
        ["clock", {}],
        ["lamp", { on: false }],
      ],
    });
  });

  test("no arguments that break the schema, no unknown function, no text instead of a call", async () => {
    expect(await accepts(format, true, badArguments)).toBe(false);
    expect(await accepts(format, true, one.replace('"lamp"', '"oven"'))).toBe(false);
    expect(await accepts(format, true, "The lamp is on.")).toBe(false);
    expect(await accepts(format, true, "")).toBe(false);
  });

  test("JSON in the compact layout: no whitespace beyond json.dumps' separators", async () => {
    expect(await accepts(format, false, one.replace('{"on": true', '{ "on": true'))).toBe(false);
    expect(await accepts(format, false, one.replace('"on": true', '"on":  true'))).toBe(false);
  });
});

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { hermesFormat } from "../../src/model/tool-calls/hermes.js";
import { llama3JsonFormat } from "../../src/model/tool-calls/llama3-json.js";
import { mistralFormat } from "../../src/model/tool-calls/mistral.js";
import {
  collectToolCallEvents,
  type ToolCallEvent,
  type ToolCallFormat,
} from "../../src/model/tool-calls/tool-call.js";

/** Content and calls (name, arguments) of a text pushed in `pieces`; ids checked apart (they are random). */
function parse(format: ToolCallFormat, pieces: readonly string[]) {
  const parser = format.createParser();
  const events: ToolCallEvent[] = [];
  for (const piece of pieces) events.push(...parser.push(piece));
  events.push(...parser.finish());
  const { content, toolCalls } = collectToolCallEvents(events);
  for (const call of toolCalls) expect(call.id).toMatch(/^call_[0-9a-f]{24}$/);
  return { content, calls: toolCalls.map(({ name, arguments: args }) => ({ name, arguments: args })) };
}

/** `text` cut at `cuts` (positions, any order, repeats allowed). */
function split(text: string, cuts: readonly number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  return [0, ...at].map((start, i) => text.slice(start, at[i] ?? text.length));
}

const call = (name: string, args: Record<string, unknown>) => ({ name, arguments: JSON.stringify(args) });
const paris = { location: "San Francisco, CA, USA", unit: "celsius" };

/** Realistic outputs of each format (as the family's models write them) and what they hold. */
const cases: [ToolCallFormat, string, { content: string; calls: { name: string; arguments: string }[] }][] = [
  [
    hermesFormat,
    `<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA", "unit": "celsius"}}\n</tool_call>\n<tool_call>\n{"name": "get_temperature_date", "arguments": {"location": "San Francisco, CA, USA", "date": "2024-10-01", "unit": "celsius"}}\n</tool_call>`,
    {
      content: "",
      calls: [
        call("get_current_temperature", paris),
        call("get_temperature_date", { location: paris.location, date: "2024-10-01", unit: "celsius" }),
      ],
    },
  ],
  [
    hermesFormat,
    `<think>\nThe user wants the weather; I should call get_weather.\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris \\"centre\\" {1}"}}\n</tool_call>`,
    {
      content: "<think>\nThe user wants the weather; I should call get_weather.\n</think>",
      calls: [call("get_weather", { city: 'Paris "centre" {1}' })],
    },
  ],
  [
    hermesFormat,
    'Let me look that up.\n<tool_call>\n{"name": "search", "arguments": {}}\n</tool_call>\nDone.',
    { content: "Let me look that up.\nDone.", calls: [call("search", {})] },
  ],
  [
    hermesFormat,
    "Use <tools> and <tool_call> tags wisely: <tool_call>not json</tool_call> \n",
    { content: "Use <tools> and <tool_call> tags wisely: <tool_call>not json</tool_call> \n", calls: [] },
  ],
  [
    hermesFormat,
    '<tool_call>\n{"name": "ping", "arguments": {"host": "a"}}',
    { content: "", calls: [call("ping", { host: "a" })] },
  ],
  [
    llama3JsonFormat,
    '{"name": "get_weather", "parameters": {"city": "Paris", "days": 3}}',
    { content: "", calls: [call("get_weather", { city: "Paris", days: 3 })] },
  ],
  [
    llama3JsonFormat,
    '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_time", "arguments": {"tz": "CET"}}',
    { content: "", calls: [call("get_weather", { city: "Paris" }), call("get_time", { tz: "CET" })] },
  ],
  [
    llama3JsonFormat,
    'The capital of France is Paris. {"name": "x"}',
    { content: 'The capital of France is Paris. {"name": "x"}', calls: [] },
  ],
  [llama3JsonFormat, '{"answer": 4}', { content: '{"answer": 4}', calls: [] }],
  [
    mistralFormat,
    '[TOOL_CALLS] [{"name": "get_current_weather", "arguments": {"location": "Paris, France", "format": "celsius"}}, {"name": "get_current_weather", "arguments": {"location": "Oslo, Norway", "format": "celsius"}}]',
    {
      content: "",
      calls: [
        call("get_current_weather", { location: "Paris, France", format: "celsius" }),
        call("get_current_weather", { location: "Oslo, Norway", format: "celsius" }),
      ],
    },
  ],
  [
    mistralFormat,
    'I will check. [TOOL_CALLS][{"name": "lookup", "arguments": {"q": "[TOOL_CALLS] ]"}}]',
    { content: "I will check.", calls: [call("lookup", { q: "[TOOL_CALLS] ]" })] },
  ],
  [mistralFormat, "No tools [needed] here.", { content: "No tools [needed] here.", calls: [] }],
];

describe("tool-call parsers", () => {
  test.each(cases.map(([format, text, expected]) => [format.name, text, format, expected] as const))(
    "%s reads %j",
    (_name, text, format, expected) => {
      expect(parse(format, [text])).toEqual(expected);
      expect(parse(format, [...text])).toEqual(expected);
    },
  );

  test("any split of a realistic output into pushes gives what the whole text gives", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...cases),
        fc.array(fc.nat(), { maxLength: 12 }),
        ([format, text, expected], cuts) => {
          expect(parse(format, split(text, cuts))).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  /** Texts made of the formats' markers and JSON pieces, valid or not. */
  const pieces = [
    "<tool_call>",
    "</tool_call>",
    "<tool",
    "[TOOL_CALLS]",
    "[TOOL",
    "<|python_tag|>",
    '{"name": "f", "arguments": {"a": [1, "}"]}}',
    '{"name": "g", "parameters": {}}',
    '{"x": 1}',
    "{",
    "}",
    "[",
    "]",
    ",",
    ";",
    '"',
    "\\",
    " ",
    "\n",
    "text",
  ];
  test.each([hermesFormat, llama3JsonFormat, mistralFormat])(
    "$name: any text, split anywhere, parses as the whole text does",
    (format) => {
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom(...pieces), { maxLength: 20 }),
          fc.array(fc.nat(), { maxLength: 10 }),
          (parts, cuts) => {
            const text = parts.join("");
            expect(parse(format, split(text, cuts))).toEqual(parse(format, [text]));
          },
        ),
        { numRuns: 1000 },
      );
    },
  );
});

import fc from "fast-check";
import { expect, test } from "vitest";
import { hermesFormat } from "../../src/model/tool-calls/hermes.js";
import { ResponseOutput } from "../../src/server/responses-output.js";

// A reply in Hermes' format (what the demo model is asked for): text, then two calls.
const reply =
  "Let me look that up. " +
  '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Ur", "unit": "C"}}\n</tool_call>\n' +
  '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>';

/** The output items this reply must give, ids aside (the parser drops the space before a call). */
const expectedItems = [
  {
    type: "message",
    role: "assistant",
    status: "completed",
    content: [{ type: "output_text", text: "Let me look that up.", annotations: [] }],
  },
  {
    type: "function_call",
    status: "completed",
    name: "get_weather",
    arguments: '{"city":"Ur","unit":"C"}',
  },
  { type: "function_call", status: "completed", name: "get_time", arguments: "{}" },
];

interface Event {
  type: string;
  [field: string]: unknown;
}

/** Runs `reply`, cut into `pieces`, through the parser into a ResponseOutput, recording its events. */
function build(pieces: string[]) {
  const events: Event[] = [];
  // Events are copied as they are sent, as a stream serializes them at once.
  const output = new ResponseOutput((type, fields) => events.push(structuredClone({ type, ...fields })));
  const parser = hermesFormat.createParser();
  for (const piece of pieces) for (const e of parser.push(piece)) output.add(e);
  for (const e of parser.finish()) output.add(e);
  output.finish("completed");
  return { items: output.items, events };
}

/** `text` cut at the given offsets. */
function cut(text: string, offsets: number[]): string[] {
  const ends = [...new Set(offsets.map((o) => o % (text.length + 1)))].sort((a, b) => a - b);
  return [...ends, text.length].map((end, i) => text.slice(i === 0 ? 0 : ends[i - 1], end));
}

test("text then calls become a message item and function_call items, however the text streams in", () => {
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 40 }), (offsets) => {
      const { items, events } = build(cut(reply, offsets));
      expect(items).toMatchObject(expectedItems);
      expect(items[0].id).toMatch(/^msg_/);
      for (const item of items.slice(1)) {
        expect(item.id).toMatch(/^fc_/);
        expect(item.type === "function_call" && item.call_id).toBeTruthy();
      }
      expect(new Set(items.map((i) => i.id)).size).toBe(3);

      // Each item is added, then described, then done, before the next is added.
      const itemEvents = events.filter((e) => e.type.startsWith("response.output_item."));
      expect(itemEvents.map((e) => [e.type, e.output_index])).toEqual([
        ["response.output_item.added", 0],
        ["response.output_item.done", 0],
        ["response.output_item.added", 1],
        ["response.output_item.done", 1],
        ["response.output_item.added", 2],
        ["response.output_item.done", 2],
      ]);
      expect(itemEvents.map((e) => (e.item as { status: string }).status)).toEqual([
        "in_progress",
        "completed",
        "in_progress",
        "completed",
        "in_progress",
        "completed",
      ]);
      expect(itemEvents.filter((_, i) => i % 2 === 1).map((e) => e.item)).toEqual(items);
      items.forEach((item, index) => {
        const own = events.filter((e) => e.output_index === index);
        expect(own.every((e) => e.item_id === undefined || e.item_id === item.id)).toBe(true);
        const addedAt = events.findIndex(
          (e) => e.type === "response.output_item.added" && e.output_index === index,
        );
        const doneAt = events.findIndex(
          (e) => e.type === "response.output_item.done" && e.output_index === index,
        );
        expect(own.every((e) => events.indexOf(e) >= addedAt && events.indexOf(e) <= doneAt)).toBe(true);
      });

      // The deltas add up to what the done events and the items say.
      const joined = (type: string, index: number) =>
        events
          .filter((e) => e.type === type && e.output_index === index)
          .map((e) => e.delta)
          .join("");
      expect(joined("response.output_text.delta", 0)).toBe(expectedItems[0].content?.[0].text);
      for (const index of [1, 2]) {
        const done = events.find(
          (e) => e.type === "response.function_call_arguments.done" && e.output_index === index,
        );
        const item = items[index];
        expect(done).toMatchObject({
          arguments: expectedItems[index].arguments,
          name: expectedItems[index].name,
        });
        expect(joined("response.function_call_arguments.delta", index)).toBe(
          item.type === "function_call" ? item.arguments : undefined,
        );
      }
    }),
    { numRuns: 200 },
  );
});

test("an output cut off marks its last item incomplete; an output with nothing is one empty message", () => {
  const cutOff = new ResponseOutput(() => {});
  cutOff.add({ kind: "content", text: "In the" });
  cutOff.finish("incomplete");
  expect(cutOff.items).toMatchObject([
    { type: "message", status: "incomplete", content: [{ text: "In the" }] },
  ]);

  const events: string[] = [];
  const empty = new ResponseOutput((type) => events.push(type));
  empty.finish("completed");
  expect(empty.items).toMatchObject([{ type: "message", status: "completed", content: [{ text: "" }] }]);
  expect(events).toEqual([
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
  ]);
});

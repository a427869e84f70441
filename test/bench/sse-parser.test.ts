import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SseParser } from "../../src/workload/sse-parser.js";

/** The payloads a whole stream holds, read the plain way: events split on blank lines, data lines joined. */
function wholeStreamData(text: string): string[] {
  return text
    .replaceAll("\r\n", "\n")
    .split("\n\n")
    .slice(0, -1)
    .map((event) =>
      event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n"),
    )
    .filter((data) => data !== "");
}

const line = fc.oneof(
  fc.string({ unit: fc.constantFrom("a", "{", "}", ":", " ", '"', "é") }).map((s) => `data: ${s}`),
  fc.constantFrom("data:[DONE]", "event: delta", ": comment", "data:"),
);
const event = fc.array(line, { minLength: 1, maxLength: 3 });
const stream = fc.tuple(fc.array(event, { maxLength: 6 }), fc.boolean()).map(([events, crlf]) =>
  events
    .map((e) => `${e.join("\n")}\n\n`)
    .join("")
    .replaceAll("\n", crlf ? "\r\n" : "\n"),
);

describe("SseParser", () => {
  it("gives every event's data once it is complete, however the text is split (CRLF split too)", () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 8 }), (text, cuts) => {
        const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const pieces = [0, ...at, text.length]
          .slice(1)
          .map((end, i, ends) => text.slice(i ? ends[i - 1] : 0, end));
        const parser = new SseParser();
        expect(pieces.flatMap((piece) => parser.push(piece))).toEqual(wholeStreamData(text));
      }),
    );
  });

  it("holds an unfinished event back until its blank line arrives", () => {
    const parser = new SseParser();
    expect(parser.push('data: {"a":1}\n\ndata: {"b"')).toEqual(['{"a":1}']);
    expect(parser.push(":2}\n")).toEqual([]);
    expect(parser.push("\n")).toEqual(['{"b":2}']);
  });
});

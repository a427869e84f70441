import type { StructuredOutputSpec } from "../structured-output-spec.js";
import { callTags, structuralTagSpec } from "./forced-call.js";
import { readCallList, ToolCallEvents } from "./parsed-call.js";
import type { ToolCallEvent, ToolCallFormat, ToolCallParser, ToolDefinition } from "./tool-call.js";

const pythonTag = "<|python_tag|>";

/**
 * Llama 3.1/3.2's JSON format (vLLM's `llama3_json`; Llama 4's templates ask for it too): a reply that is a
 * call, optionally after `<|python_tag|>`, several separated by "; ":
 *
 *   {"name": "get_weather", "parameters": {"city": "Paris"}}
 *
 * A reply that does not begin with a call is content.
 */
export const llama3JsonFormat: ToolCallFormat = {
  name: "llama3_json",
  markers: [pythonTag],
  createParser: () => new Llama3JsonParser(),
  forcedCalls: (tools: readonly ToolDefinition[], parallel: boolean): StructuredOutputSpec =>
    structuralTagSpec(
      callTags(tools, (name) => `{"name": ${JSON.stringify(name)}, "parameters": `, "}", "; ", parallel),
    ),
};

class Llama3JsonParser implements ToolCallParser {
  private buffer = "";
  /** Whether the reply starts with calls: undecided until its first characters arrive. */
  private state: "start" | "calls" | "content" = "start";
  private readonly events = new ToolCallEvents();

  push(text: string): ToolCallEvent[] {
    this.buffer += text;
    if (this.state === "start") this.decide();
    if (this.state === "calls") {
      const { rest, done } = readCallList(this.buffer, ";", ["parameters", "arguments"], this.events);
      this.buffer = rest;
      if (done) this.state = "content";
    }
    if (this.state === "content") {
      this.events.content(this.buffer);
      this.buffer = "";
    }
    return this.events.take();
  }

  finish(): ToolCallEvent[] {
    this.events.content(this.buffer);
    this.buffer = "";
    this.events.end();
    return this.events.take();
  }

  private decide(): void {
    const start = this.buffer.trimStart();
    if (start.startsWith(pythonTag)) {
      this.buffer = start.slice(pythonTag.length);
      this.state = "calls";
    } else if (start.startsWith("{")) {
      this.buffer = start;
      this.state = "calls";
    } else if (!pythonTag.startsWith(start)) this.state = "content";
  }
}

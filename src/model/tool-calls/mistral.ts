import type { StructuredOutputSpec } from "../structured-output-spec.js";
import { callTags, structuralTagSpec } from "./forced-call.js";
import { partialMarkerLength, readCallList, ToolCallEvents } from "./parsed-call.js";
import type { ToolCallEvent, ToolCallFormat, ToolCallParser, ToolDefinition } from "./tool-call.js";

const marker = "[TOOL_CALLS]";

/**
 * Mistral's format (vLLM's `mistral`, Mistral 7B v0.3, Nemo, Small): a JSON list of calls after the
 * `[TOOL_CALLS]` token:
 *
 *   [TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]
 */
export const mistralFormat: ToolCallFormat = {
  name: "mistral",
  markers: [marker],
  createParser: () => new MistralParser(),
  forcedCalls: (tools: readonly ToolDefinition[], parallel: boolean): StructuredOutputSpec =>
    // The list as a tag around the calls: XGrammar takes calls with separators only at the end of a tag.
    structuralTagSpec({
      type: "tag",
      begin: `${marker}[`,
      content: callTags(
        tools,
        (name) => `{"name": ${JSON.stringify(name)}, "arguments": `,
        "}",
        ", ",
        parallel,
      ),
      end: "]",
    }),
};

class MistralParser implements ToolCallParser {
  private buffer = "";
  private inCalls = false;
  private readonly events = new ToolCallEvents();

  push(text: string): ToolCallEvent[] {
    this.buffer += text;
    this.drain();
    return this.events.take();
  }

  finish(): ToolCallEvent[] {
    this.events.content(this.buffer);
    this.buffer = "";
    this.events.end();
    return this.events.take();
  }

  private drain(): void {
    for (;;) {
      if (!this.inCalls) {
        const at = this.buffer.indexOf(marker);
        const end = at >= 0 ? at : this.buffer.length - partialMarkerLength(this.buffer, marker);
        this.events.content(this.buffer.slice(0, end));
        this.buffer = this.buffer.slice(at >= 0 ? at + marker.length : end);
        if (at < 0) return;
        this.inCalls = true;
      }
      const { rest, done } = readCallList(this.buffer, "[,", ["arguments"], this.events);
      this.buffer = rest.startsWith("]") ? rest.slice(1) : rest;
      if (!done) return;
      this.inCalls = false;
    }
  }
}

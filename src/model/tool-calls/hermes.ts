import type { StructuredOutputSpec } from "../structured-output-spec.js";
import { callTags, structuralTagSpec } from "./forced-call.js";
import { parseCallObject, partialMarkerLength, ToolCallEvents } from "./parsed-call.js";
import type { ToolCallEvent, ToolCallFormat, ToolCallParser, ToolDefinition } from "./tool-call.js";

const open = "<tool_call>";
const close = "</tool_call>";

/**
 * Hermes' format (vLLM's `hermes`), which Qwen2.5, Qwen3 and Hermes models write: each call a JSON object in
 * tags, anywhere in the reply:
 *
 *   <tool_call>
 *   {"name": "get_weather", "arguments": {"city": "Paris"}}
 *   </tool_call>
 */
export const hermesFormat: ToolCallFormat = {
  name: "hermes",
  markers: [open, close],
  createParser: () => new HermesParser(),
  forcedCalls: (tools: readonly ToolDefinition[], parallel: boolean): StructuredOutputSpec =>
    structuralTagSpec(
      callTags(
        tools,
        (name) => `${open}\n{"name": ${JSON.stringify(name)}, "arguments": `,
        `}\n${close}`,
        "\n",
        parallel,
      ),
    ),
};

/** Content outside the tags; a tag's text whose JSON is not a call stays content. */
class HermesParser implements ToolCallParser {
  private buffer = "";
  private inCall = false;
  private readonly events = new ToolCallEvents();

  push(text: string): ToolCallEvent[] {
    this.buffer += text;
    this.drain(false);
    return this.events.take();
  }

  finish(): ToolCallEvent[] {
    this.drain(true);
    this.events.end();
    return this.events.take();
  }

  private drain(final: boolean): void {
    for (;;) {
      if (!this.inCall) {
        const at = this.buffer.indexOf(open);
        if (at < 0) {
          const held = final ? 0 : partialMarkerLength(this.buffer, open);
          this.events.content(this.buffer.slice(0, this.buffer.length - held));
          this.buffer = this.buffer.slice(this.buffer.length - held);
          return;
        }
        this.events.content(this.buffer.slice(0, at));
        this.buffer = this.buffer.slice(at + open.length);
        this.inCall = true;
      }
      const end = this.buffer.indexOf(close);
      // A reply that ends inside a tag (the stop string or max_tokens cut it) is a call if its JSON is whole.
      if (end < 0 && !final) return;
      const body = end < 0 ? this.buffer : this.buffer.slice(0, end);
      const rest = end < 0 ? "" : this.buffer.slice(end + close.length);
      const call = parseCallObject(body.trim(), ["arguments"]);
      if (call) this.events.call(call);
      else this.events.content(open + (end < 0 ? body : body + close));
      this.buffer = rest;
      this.inCall = false;
    }
  }
}

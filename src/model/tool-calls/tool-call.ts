import type { StructuredOutputSpec } from "../structured-output-spec.js";

/**
 * Tool calling as the model layer sees it: the functions a request offers, the calls parsed out of the
 * model's text, and the streaming parser's events. Each model family writes calls in its own format
 * (tool-call formats live beside this file); the server turns these into OpenAI's `tool_calls`.
 */

/** A function the model may call (OpenAI's `tools[].function`). */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

/** How the request lets the model call tools (OpenAI's `tool_choice`); a name forces that function. */
export type ToolChoice = "none" | "auto" | "required" | { name: string };

/** One parsed call; `arguments` is JSON text. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/**
 * What a streaming parser reports as the model's text arrives: plain content, the start of the call
 * numbered `index`, and pieces of that call's arguments text. Concatenated, the events of one stream give
 * exactly what parsing the whole text at once gives.
 */
export type ToolCallEvent =
  | { kind: "content"; text: string }
  | { kind: "call"; index: number; id: string; name: string }
  | { kind: "arguments"; index: number; text: string };

/** Parses one completion's text as it streams. */
export interface ToolCallParser {
  /** Takes the next piece of text; returns what it completes (text that may begin a call is held back). */
  push(text: string): ToolCallEvent[];
  /** The text has ended: returns whatever was held back. */
  finish(): ToolCallEvent[];
}

/** The content and calls that a list of events adds up to. */
export function collectToolCallEvents(events: readonly ToolCallEvent[]): {
  content: string;
  toolCalls: ToolCall[];
} {
  let content = "";
  const toolCalls: ToolCall[] = [];
  for (const e of events) {
    if (e.kind === "content") content += e.text;
    else if (e.kind === "call") toolCalls[e.index] = { id: e.id, name: e.name, arguments: "" };
    else toolCalls[e.index].arguments += e.text;
  }
  return { content, toolCalls };
}

/**
 * How one model family writes tool calls (vLLM's `--tool-call-parser`): the parser that reads them, and the
 * constraint that forces them.
 */
export interface ToolCallFormat {
  /** vLLM's parser name. */
  name: "hermes" | "llama3_json" | "mistral";
  /** The texts that mark a call; where the tokenizer has them as special tokens, the output must keep them. */
  markers: readonly string[];
  createParser(): ToolCallParser;
  /** Makes the reply a call of one of `tools` (or, when `parallel`, one or more calls). */
  forcedCalls(tools: readonly ToolDefinition[], parallel: boolean): StructuredOutputSpec;
}

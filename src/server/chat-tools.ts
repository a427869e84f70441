import type { ChatMessage, ChatToolCall } from "../model/chat-template.js";
import type { Tokenizer } from "../model/tokenizer/tokenizer.js";
import { toolCallFormatOf } from "../model/tool-calls/formats.js";
import {
  collectToolCallEvents,
  type ToolCall,
  type ToolCallEvent,
  type ToolCallFormat,
  type ToolCallParser,
  type ToolChoice,
  type ToolDefinition,
} from "../model/tool-calls/tool-call.js";
import { ApiError } from "./errors.js";
import type { ChatBodyMessage, ChatBodyTool } from "./schemas.js";
import type { FieldSpec } from "./structured-output.js";

/**
 * Tool calling, in the steps every endpoint that offers tools takes (/v1/chat/completions, /v1/responses):
 * 1. `chatTools`: the request's tools and tool_choice, checked (a 400 names the field), with the model's
 *    call format, chosen from its chat template;
 * 2. `chatMessages`: the history for the chat template (calls' arguments parsed from JSON); render the
 *    prompt with `tools.definitions` as the template's `tools` (chatPromptIds);
 * 3. `toolSamplingParams`: what tools change in sampling (the call markers kept in the text where they are
 *    special tokens; the constraint that forces a call for `required` and named functions, which
 *    structured-output.ts compiles: `oneConstraint` then `withConstraint`);
 * 4. `parsedFormat`: the format whose calls are read out of the replies (none with tool_choice "none"), and
 *    `ToolCallStreams` / `parseToolCalls`: each completion's text through its parser, as it streams or
 *    whole, into content and calls;
 * 5. `openAiToolCall` / `toolCallDelta`: those in OpenAI's chat shapes.
 */

/** A request's tools, ready for the steps above. */
export interface ChatTools {
  definitions: ToolDefinition[];
  choice: ToolChoice;
  /** Whether the model may make several calls in one reply (OpenAI's `parallel_tool_calls`, default true). */
  parallel: boolean;
  format: ToolCallFormat;
}

/** The fields of a request that concern tools, as chat's body names them. */
export interface ToolFields {
  tools?: readonly ChatBodyTool[] | null;
  tool_choice?: "none" | "auto" | "required" | { type: "function"; function: { name: string } } | null;
  parallel_tool_calls?: boolean | null;
}

/** Step 1: undefined when the request offers no tools. */
export function chatTools(chatTemplate: string | undefined, body: ToolFields): ChatTools | undefined {
  const tools = body.tools ?? [];
  const choice = body.tool_choice ?? "auto";
  if (tools.length === 0) {
    if (choice !== "none" && body.tool_choice != null)
      throw new ApiError(400, "tool_choice needs tools: the request offers none", "tool_choice");
    return undefined;
  }
  const definitions = tools.map((t, i): ToolDefinition => {
    const { name, description, parameters } = t.function;
    const first = tools.findIndex((u) => u.function.name === name);
    if (first < i)
      throw new ApiError(
        400,
        `tools[${i}].function.name: "${name}" is also tools[${first}]'s name`,
        `tools[${i}].function.name`,
      );
    return {
      name,
      ...(description != null ? { description } : {}),
      ...(parameters != null ? { parameters } : {}),
    };
  });
  const format = toolCallFormatOf(chatTemplate);
  if (format === undefined) {
    throw new ApiError(
      400,
      "tools: this model's chat template has no tool-call format vellum reads (hermes, llama3_json, mistral)",
      "tools",
    );
  }
  if (typeof choice === "object" && !definitions.some((d) => d.name === choice.function.name)) {
    throw new ApiError(
      400,
      `tool_choice: the function "${choice.function.name}" is not in tools`,
      "tool_choice",
    );
  }
  return {
    definitions,
    choice: typeof choice === "object" ? { name: choice.function.name } : choice,
    parallel: body.parallel_tool_calls ?? true,
    format,
  };
}

/**
 * Step 2: the messages as the chat template reads them. A call's `arguments` (JSON text) is parsed into an
 * object, as vLLM does, since templates write it with `tojson`; an assistant turn without content has "".
 */
export function chatMessages(messages: readonly ChatBodyMessage[]): ChatMessage[] {
  return messages.map((m, i) => {
    const content =
      typeof m.content === "string" ? m.content : (m.content ?? []).map((part) => part.text).join("");
    const message: ChatMessage = { role: m.role, content };
    if (m.role === "assistant" && m.tool_calls) {
      message.toolCalls = m.tool_calls.map(
        (c, j): ChatToolCall => ({
          id: c.id,
          name: c.function.name,
          arguments: parseArguments(
            c.function.arguments,
            `messages[${i}].tool_calls[${j}].function.arguments`,
          ),
        }),
      );
    }
    if (m.role === "tool") message.toolCallId = m.tool_call_id;
    return message;
  });
}

function parseArguments(text: string, field: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, `${field}: not JSON`, field);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ApiError(400, `${field}: must be a JSON object`, field);
  return value as Record<string, unknown>;
}

/**
 * Step 3: the sampling parameters tools set. The call markers must stay in the output text where the
 * tokenizer has them as special tokens (Llama's `<|python_tag|>`, Mistral's `[TOOL_CALLS]`), or the parser
 * would never see them. `forcedCalls` is the constraint for `required` (any offered function, one call or,
 * when parallel, several) and for a named function (that one, once); undefined for `auto` and `none`.
 */
export function toolSamplingParams(
  tools: ChatTools | undefined,
  tokenizer: Tokenizer,
): { skipSpecialTokens?: false; forcedCalls?: FieldSpec } {
  if (tools === undefined || tools.choice === "none") return {};
  const keepSpecial = tools.format.markers.some((m) => tokenizer.findSpecialText(m) !== undefined);
  const { choice, definitions, format } = tools;
  const named = typeof choice === "object" ? definitions.findIndex((d) => d.name === choice.name) : -1;
  const forcedCalls: FieldSpec | undefined =
    choice === "required"
      ? { spec: format.forcedCalls(definitions, tools.parallel), param: "tools" }
      : named >= 0
        ? {
            spec: format.forcedCalls([definitions[named]], false),
            param: `tools[${named}].function.parameters`,
          }
        : undefined;
  return { ...(keepSpecial ? { skipSpecialTokens: false } : {}), ...(forcedCalls ? { forcedCalls } : {}) };
}

/** Step 4: the format of the calls in the replies; undefined where none are read (no tools, or `none`). */
export function parsedFormat(tools: ChatTools | undefined): ToolCallFormat | undefined {
  return tools === undefined || tools.choice === "none" ? undefined : tools.format;
}

/** Step 4, streamed: each choice's text through its own parser. */
export class ToolCallStreams {
  private readonly parsers = new Map<number, ToolCallParser>();
  private readonly calling = new Set<number>();

  constructor(private readonly format: ToolCallFormat) {}

  /** The events that choice `index`'s next text completes; `finished` ends its text. */
  push(index: number, text: string, finished: boolean): ToolCallEvent[] {
    let parser = this.parsers.get(index);
    if (parser === undefined) {
      parser = this.format.createParser();
      this.parsers.set(index, parser);
    }
    const events = [...parser.push(text), ...(finished ? parser.finish() : [])];
    if (events.some((e) => e.kind === "call")) this.calling.add(index);
    return events;
  }

  /** OpenAI's finish_reason: "tool_calls" where a choice that stopped by itself made calls. */
  finishReason(index: number, reason: string): string {
    return reason === "stop" && this.calling.has(index) ? "tool_calls" : reason;
  }
}

/** Step 4, whole: a completion's text as content and calls. */
export function parseToolCalls(
  format: ToolCallFormat,
  text: string,
): { content: string; toolCalls: ToolCall[] } {
  const parser = format.createParser();
  return collectToolCallEvents([...parser.push(text), ...parser.finish()]);
}

/** Step 5: a call as OpenAI's `message.tool_calls[]` writes it. */
export function openAiToolCall(call: ToolCall) {
  return { id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } };
}

/**
 * Step 5, streamed: an event as a chat chunk's `delta`: content, a call's start (its id and name, with empty
 * arguments), or a piece of a call's arguments; OpenAI's clients add the pieces up by `index`.
 */
export function toolCallDelta(event: ToolCallEvent): Record<string, unknown> {
  switch (event.kind) {
    case "content":
      return { content: event.text };
    case "call":
      return {
        tool_calls: [
          {
            index: event.index,
            id: event.id,
            type: "function",
            function: { name: event.name, arguments: "" },
          },
        ],
      };
    case "arguments":
      return { tool_calls: [{ index: event.index, function: { arguments: event.text } }] };
  }
}

import { chatPromptIds } from "./chat.js";
import type { ChatTools, ToolFields } from "./chat-tools.js";
import type { ServerContext } from "./context.js";
import { ApiError } from "./errors.js";
import type { ResponsesBody } from "./responses-schema.js";
import type { ChatBodyMessage } from "./schemas.js";
import type { FieldSpec } from "./structured-output.js";

/*
 * A Responses API request as the chat path takes it: its input items as chat messages, its tools in chat's
 * shape, its text.format as a structured-output constraint.
 */

/**
 * The conversation as chat messages: `instructions` first as the system message, then each item. A function
 * call joins the assistant message just before it (text and calls are one assistant turn), or starts one;
 * a call's output becomes a role "tool" message, and must answer a call made earlier in the input.
 */
export function inputMessages(body: ResponsesBody): ChatBodyMessage[] {
  const messages: ChatBodyMessage[] = [];
  if (body.instructions) messages.push({ role: "system", content: body.instructions });
  const callIds = new Set<string>();
  body.input.forEach((item, i) => {
    if (item.type === "message") {
      messages.push({ role: item.role, content: textOf(item.content) });
    } else if (item.type === "function_call") {
      callIds.add(item.call_id);
      const call = {
        id: item.call_id,
        type: "function" as const,
        function: { name: item.name, arguments: item.arguments },
      };
      const previous = messages.at(-1);
      if (previous?.role === "assistant") previous.tool_calls = [...(previous.tool_calls ?? []), call];
      else messages.push({ role: "assistant", content: null, tool_calls: [call] });
    } else {
      if (!callIds.has(item.call_id)) {
        throw new ApiError(
          400,
          `no function_call with call_id ${JSON.stringify(item.call_id)} comes before this function_call_output`,
          `input.${i}.call_id`,
        );
      }
      messages.push({ role: "tool", content: textOf(item.output), tool_call_id: item.call_id });
    }
  });
  return messages;
}

function textOf(parts: readonly { text: string }[]): string {
  return parts.map((p) => p.text).join("");
}

/** text.format as a constraint on the text: any JSON object, or JSON valid for a schema. */
export function textFormatSpec(body: ResponsesBody): FieldSpec | undefined {
  const format = body.text?.format;
  if (format?.type === "json_object") return { spec: { type: "json_object" }, param: "text.format" };
  if (format?.type === "json_schema")
    return { spec: { type: "json_schema", schema: format.schema }, param: "text.format.schema" };
  return undefined;
}

/** The request's tools in chat's shape (chat nests each function's fields under `function`). */
export function chatToolFields(body: ResponsesBody): ToolFields {
  const choice = body.tool_choice;
  return {
    tools: body.tools?.map(({ type, ...fn }) => ({ type, function: fn })),
    tool_choice:
      typeof choice === "object" && choice !== null
        ? { type: "function", function: { name: choice.name } }
        : choice,
    parallel_tool_calls: body.parallel_tool_calls,
  };
}

/**
 * The prompt, rendered as chat's is. A 400 that names a chat message names `input` instead, since the
 * messages are not the request's own (instructions come first; a call joins the message before it).
 */
export async function inputPromptIds(
  ctx: ServerContext,
  messages: ChatBodyMessage[],
  tools: ChatTools | undefined,
) {
  try {
    return await chatPromptIds(ctx, messages, true, tools?.definitions);
  } catch (err) {
    if (err instanceof ApiError && err.param?.startsWith("messages"))
      throw new ApiError(err.status, `input, as chat messages: ${err.message}`, "input");
    throw err;
  }
}

import { samplingParams, type ValidSamplingParams } from "../engine/api.js";
import type { ToolCallFormat } from "../model/tool-calls/tool-call.js";
import { chatPromptIds } from "./chat.js";
import { chatTools, parsedFormat, type ToolFields, toolSamplingParams } from "./chat-tools.js";
import type { ServerContext } from "./context.js";
import { ApiError } from "./errors.js";
import type { ResponsesBody } from "./responses-schema.js";
import type { ChatBodyMessage } from "./schemas.js";
import { type FieldSpec, oneConstraint, withConstraint } from "./structured-output.js";

/** What a Responses request becomes on the chat path. */
export interface ChatPath {
  promptIds: number[];
  params: ValidSamplingParams;
  /** The format of the function calls in the reply; undefined where none are read (no tools, or `none`). */
  callFormat: ToolCallFormat | undefined;
}

/**
 * A Responses request on the chat path, in chat's steps: its tools checked, its input items as chat messages
 * rendered with the model's template and those tools, the sampling parameters with the grammar of
 * text.format or of a forced call (both at once is a 400, as in chat).
 */
export async function onChatPath(ctx: ServerContext, body: ResponsesBody): Promise<ChatPath> {
  try {
    const tools = chatTools(ctx.model.chatTemplate, chatToolFields(body));
    const promptIds = await chatPromptIds(ctx, inputMessages(body), true, tools?.definitions);
    // As chat's: by default as many tokens as the context has room for.
    const maxTokens = body.max_output_tokens ?? Math.max(1, ctx.engine.maxModelLen - promptIds.length);
    const { forcedCalls, ...toolParams } = toolSamplingParams(tools, ctx.model.tokenizer);
    const sampling = samplingParams({
      temperature: body.temperature ?? undefined,
      topP: body.top_p ?? undefined,
      maxTokens,
      ...toolParams,
    });
    const params = await withConstraint(ctx, oneConstraint(forcedCalls, textFormatSpec(body)), sampling);
    return { promptIds, params, callFormat: parsedFormat(tools) };
  } catch (err) {
    throw inResponsesTerms(err);
  }
}

/**
 * The conversation as chat messages: `instructions` first as the system message, then each item. A function
 * call joins the assistant message just before it (text and calls are one assistant turn), or starts one;
 * a call's output becomes a role "tool" message, and must answer a call made earlier in the input.
 */
function inputMessages(body: ResponsesBody): ChatBodyMessage[] {
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
function textFormatSpec(body: ResponsesBody): FieldSpec | undefined {
  const format = body.text?.format;
  if (format?.type === "json_object") return { spec: { type: "json_object" }, param: "text.format" };
  if (format?.type === "json_schema")
    return { spec: { type: "json_schema", schema: format.schema }, param: "text.format.schema" };
  return undefined;
}

/** The request's tools in chat's shape (chat nests each function's fields under `function`). */
function chatToolFields(body: ResponsesBody): ToolFields {
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
 * Chat's 400s name chat's fields; these name the Responses request's: a chat message's error names `input`
 * (the messages are not the request's own: instructions come first, a call joins the message before it),
 * and a tool's fields are not nested under `function`.
 */
function inResponsesTerms(err: unknown): unknown {
  if (!(err instanceof ApiError) || err.param === null) return err;
  if (err.param.startsWith("messages"))
    return new ApiError(err.status, `input, as chat messages: ${err.message}`, "input");
  const toolField = /tools\[(\d+)\]\.function\./g;
  if (!err.param.match(toolField)) return err;
  return new ApiError(
    err.status,
    err.message.replace(toolField, "tools[$1]."),
    err.param.replace(toolField, "tools[$1]."),
    err.retryAfter,
  );
}

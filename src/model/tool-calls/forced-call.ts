import type { StructuredOutputSpec } from "../structured-output-spec.js";
import type { ToolDefinition } from "./tool-call.js";

/**
 * The constraint that makes a model call a function (OpenAI's `tool_choice: "required"` or a named function),
 * as an XGrammar structural tag: the reply is nothing but calls in the model's format, one tag per offered
 * function, each holding arguments valid for the function's `parameters` (its JSON Schema).
 */

/** A format's call tags joined by `separator`: one call, or one or more when `parallel`. */
export function callTags(
  tools: readonly ToolDefinition[],
  begin: (name: string) => string,
  end: string,
  separator: string,
  parallel: boolean,
): Record<string, unknown> {
  return {
    type: "tags_with_separator",
    tags: tools.map((tool) => ({
      type: "tag",
      begin: begin(tool.name),
      content: { type: "json_schema", json_schema: argumentsSchema(tool) },
      end,
    })),
    separator,
    at_least_one: true,
    stop_after_first: !parallel,
  };
}

/** A structural tag whose format is `format` (see XGrammar's structural tag). */
export function structuralTagSpec(format: Record<string, unknown>): StructuredOutputSpec {
  return { type: "structural_tag", structuralTag: JSON.stringify({ type: "structural_tag", format }) };
}

/** A function without `parameters` takes none (OpenAI's meaning), so its arguments are `{}`. */
function argumentsSchema(tool: ToolDefinition): Record<string, unknown> {
  return tool.parameters ?? { type: "object", properties: {}, additionalProperties: false };
}

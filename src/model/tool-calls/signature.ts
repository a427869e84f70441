import type { ToolDefinition } from "./tool-call.js";

/**
 * A function as one short line, `name(arg: type, optional?: type) - description`, its argument types read
 * from its JSON Schema (`type`, `enum`, array `items`). The plain chat fallback lists tools this way: the models
 * without a template are small, and a function's JSON Schema alone can outgrow the demo model's 256-token
 * context (an AI SDK tool with one string argument is 172 of its tokens, this line 19). What the schema says
 * beyond the types is enforced where it matters, by the grammar of a forced call.
 */
export function functionSignature(tool: ToolDefinition): string {
  const parameters = tool.parameters ?? {};
  const properties = isObject(parameters.properties) ? parameters.properties : {};
  const required = new Set(Array.isArray(parameters.required) ? parameters.required : []);
  const args = Object.entries(properties).map(
    ([name, schema]) => `${name}${required.has(name) ? "" : "?"}: ${typeName(schema)}`,
  );
  return `${tool.name}(${args.join(", ")})${tool.description ? ` - ${tool.description}` : ""}`;
}

function typeName(schema: unknown): string {
  if (!isObject(schema)) return "any";
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.type === "array") return `${typeName(schema.items)}[]`;
  if (typeof schema.type === "string") return schema.type;
  if (Array.isArray(schema.type)) return schema.type.join(" | ");
  return "any";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

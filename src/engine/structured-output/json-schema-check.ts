import { InputError } from "../../model/errors.js";

/**
 * What XGrammar's JSON Schema converter enforces, keyword by keyword. It skips a keyword it does not know
 * without a word, so a schema with `multipleOf` or `uniqueItems` would compile and then produce JSON that
 * breaks it; vellum refuses such a schema instead (as vLLM refuses them for XGrammar), naming the keyword.
 */
const enforced = new Set([
  "type",
  "enum",
  "const",
  "anyOf",
  // XGrammar reads oneOf as anyOf: exact when the branches are disjoint, as discriminated unions are.
  "oneOf",
  "allOf",
  "$ref",
  "$defs",
  "definitions",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "prefixItems",
  "minItems",
  "maxItems",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "pattern",
  "format",
]);

/** Keywords that say nothing about which JSON is valid. */
const annotations = new Set([
  "title",
  "description",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
  "$comment",
  "$schema",
  "$id",
  "strict",
]);

/** The string formats XGrammar turns into a grammar (others it would skip). */
const formats = new Set([
  "email",
  "date",
  "time",
  "date-time",
  "duration",
  "ipv4",
  "ipv6",
  "hostname",
  "uuid",
  "uri",
  "uri-reference",
  "uri-template",
  "json-pointer",
  "relative-json-pointer",
]);

/**
 * Throws an InputError naming the first keyword of `schema` (or of a schema inside it) that XGrammar would not
 * enforce, with where it is (e.g. `unsupported keyword "multipleOf" at properties.age`).
 */
export function checkJsonSchema(schema: unknown, at = ""): void {
  if (typeof schema === "boolean") return;
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new InputError(`a schema must be an object or a boolean${where(at)}`);
  }
  for (const [key, value] of Object.entries(schema)) {
    const path = at === "" ? key : `${at}.${key}`;
    if (annotations.has(key)) continue;
    if (!enforced.has(key)) throw new InputError(`unsupported keyword "${key}"${where(at)}`);
    switch (key) {
      case "properties":
      case "$defs":
      case "definitions":
        for (const [name, sub] of Object.entries(objectAt(value, path)))
          checkJsonSchema(sub, `${path}.${name}`);
        break;
      case "additionalProperties":
      case "items":
        checkJsonSchema(value, path);
        break;
      case "prefixItems":
      case "anyOf":
      case "oneOf":
      case "allOf":
        if (!Array.isArray(value) || value.length === 0)
          throw new InputError(`${path} must be a non-empty list`);
        for (const [i, sub] of value.entries()) checkJsonSchema(sub, `${path}.${i}`);
        break;
      case "$ref":
        if (typeof value !== "string" || !value.startsWith("#")) {
          throw new InputError(`${path}: only references within the schema ("#/...") are supported`);
        }
        break;
      case "format":
        if (!formats.has(value as string)) {
          throw new InputError(`unsupported format ${JSON.stringify(value)}${where(at)}`);
        }
        break;
    }
  }
}

function objectAt(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InputError(`${path} must be an object`);
  }
  return value as Record<string, unknown>;
}

function where(at: string): string {
  return at === "" ? "" : ` at ${at}`;
}

import { samplingParams, type ValidSamplingParams } from "../engine/api.js";
import { InputError } from "../model/errors.js";
import type { StructuredOutputSpec } from "../model/structured-output-spec.js";
import type { ServerContext } from "./context.js";
import { ApiError } from "./errors.js";
import type { ChatBody, CompletionBody } from "./schemas.js";

/** A request's constraint and the field it came from (the `param` of a 400 about it). */
export interface FieldSpec {
  spec: StructuredOutputSpec;
  param: string;
}

/**
 * The one constraint of a request: the calls its tool_choice forces, or the structured output it asks for.
 * Both at once cannot be honoured (a forced call leaves no text for a format to shape): a 400 naming tool_choice.
 */
export function oneConstraint(
  forcedCalls: FieldSpec | undefined,
  structuredOutput: FieldSpec | undefined,
): FieldSpec | undefined {
  if (forcedCalls && structuredOutput) {
    throw new ApiError(
      400,
      `tool_choice forces a call, which constrains the reply as ${structuredOutput.param} does: give one of them`,
      "tool_choice",
    );
  }
  return forcedCalls ?? structuredOutput;
}

/**
 * `params` with the grammar of `field` compiled before anything is queued: a bad schema, regex or grammar is a
 * 400 naming its field, in XGrammar's words. Without one, `params` unchanged.
 */
export async function withConstraint(
  ctx: ServerContext,
  field: FieldSpec | undefined,
  params: ValidSamplingParams,
): Promise<ValidSamplingParams> {
  if (!field) return params;
  try {
    const grammar = await ctx.engine.structuredOutputs.compile(field.spec);
    return samplingParams({ ...params, grammar });
  } catch (err) {
    if (err instanceof InputError) throw new ApiError(400, `${field.param}: ${err.message}`, field.param);
    throw err;
  }
}

/** The one constraint a request asks for, if any; a 400 when it asks for two or states one badly. */
export function structuredOutputSpec(body: CompletionBody | ChatBody): FieldSpec | undefined {
  const fromResponseFormat = responseFormatSpec(body.response_format);
  const fromStructuredOutputs = structuredOutputsSpec(body.structured_outputs);
  if (fromResponseFormat && fromStructuredOutputs) {
    throw new ApiError(
      400,
      "response_format and structured_outputs each ask for a structured output: give one of them",
      "structured_outputs",
    );
  }
  return fromResponseFormat ?? fromStructuredOutputs;
}

function responseFormatSpec(format: CompletionBody["response_format"]): FieldSpec | undefined {
  if (!format || format.type === "text") return undefined;
  if (format.type === "json_object") return { spec: { type: "json_object" }, param: "response_format" };
  const param = "response_format.json_schema.schema";
  const schema = format.json_schema.schema;
  if (!schema) throw new ApiError(400, `${param} is required for a json_schema response format`, param);
  return { spec: { type: "json_schema", schema }, param };
}

function structuredOutputsSpec(so: CompletionBody["structured_outputs"]): FieldSpec | undefined {
  if (!so) return undefined;
  const given: FieldSpec[] = [];
  const param = (name: string) => `structured_outputs.${name}`;
  if (so.json != null)
    given.push({ spec: { type: "json_schema", schema: jsonSchemaOf(so.json) }, param: param("json") });
  if (so.json_object) given.push({ spec: { type: "json_object" }, param: param("json_object") });
  if (so.regex != null) given.push({ spec: { type: "regex", pattern: so.regex }, param: param("regex") });
  if (so.choice != null) given.push({ spec: { type: "choice", choices: so.choice }, param: param("choice") });
  if (so.grammar != null)
    given.push({ spec: { type: "grammar", grammar: so.grammar }, param: param("grammar") });
  if (so.structural_tag != null) {
    given.push({
      spec: { type: "structural_tag", structuralTag: so.structural_tag },
      param: param("structural_tag"),
    });
  }
  if (given.length !== 1) {
    const names = given.map((g) => g.param).join(", ");
    throw new ApiError(
      400,
      `structured_outputs must set exactly one of json, json_object, regex, choice, grammar, structural_tag${given.length > 1 ? `; got ${names}` : ""}`,
      "structured_outputs",
    );
  }
  return given[0];
}

/** vLLM's `structured_outputs.json` is a schema object or its JSON text. */
function jsonSchemaOf(json: string | Record<string, unknown>): Record<string, unknown> {
  if (typeof json !== "string") return json;
  const param = "structured_outputs.json";
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new ApiError(400, `${param}: not valid JSON: ${(err as Error).message}`, param);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ApiError(400, `${param}: a JSON schema must be an object`, param);
  }
  return parsed as Record<string, unknown>;
}

import { z } from "zod";

/**
 * The request body of POST /v1/responses: the subset of OpenAI's Responses API that a stateless local server
 * implements (see responses.ts). Strict like schemas.ts: any other field is a 400 naming it. A string where
 * OpenAI also takes a list (`input`, message `content`, a call's `output`) becomes the one-element list
 * first, so that an error deep in a list names its own path instead of "not a string, and not a list".
 */

const jsonObject = z.record(z.string(), z.unknown());

/** `list`, where a string stands for the list of one item made from it. */
function textOrList<T extends z.ZodType>(item: (text: string) => unknown, list: T) {
  return z.preprocess((v) => (typeof v === "string" ? [item(v)] : v), list);
}

/** Text content. Input and output text parts are both accepted anywhere, since clients send either back. */
const textPart = z.discriminatedUnion(
  "type",
  [
    z.strictObject({ type: z.literal("input_text"), text: z.string() }),
    z.strictObject({
      type: z.literal("output_text"),
      text: z.string(),
      // A previous response's output sent back as input carries these; they do not change the prompt.
      annotations: z.array(z.unknown()).nullish(),
      logprobs: z.array(z.unknown()).nullish(),
    }),
  ],
  {
    error: (issue) => `vellum reads only text parts (input_text, output_text), not ${typeOf(issue.input)}`,
  },
);

const textParts = textOrList(
  (text) => ({ type: "input_text", text }),
  z.array(textPart, { error: "must be a string or a list of text parts" }),
);

const itemStatus = z.enum(["in_progress", "completed", "incomplete"]).nullish();

/** A message: OpenAI's EasyInputMessage, input message, or a previous response's output message. */
const message = z.strictObject({
  type: z.literal("message"),
  role: z.enum(["user", "system", "developer", "assistant"]),
  content: textParts,
  id: z.string().nullish(),
  status: itemStatus,
});

/** A call the model made in a previous turn; `arguments` is JSON text (chat templates write it parsed). */
const functionCall = z.strictObject({
  type: z.literal("function_call"),
  call_id: z.string(),
  name: z.string(),
  arguments: z.string().refine(isObjectText, { error: "must be the JSON text of an object" }),
  id: z.string().nullish(),
  status: itemStatus,
});

/** The result of one of those calls, sent back by the client. */
const functionCallOutput = z.strictObject({
  type: z.literal("function_call_output"),
  call_id: z.string(),
  output: textParts,
  id: z.string().nullish(),
  status: itemStatus,
});

const implementedItemTypes = "message, function_call, function_call_output";

/** An input item; one without `type` is a message (OpenAI's EasyInputMessage). */
const inputItem = z.preprocess(
  (v) => (typeof v === "object" && v !== null && !("type" in v) ? { ...v, type: "message" } : v),
  z.discriminatedUnion("type", [message, functionCall, functionCallOutput], {
    error: (issue) =>
      isItemReference(issue.input)
        ? "an item_reference points at a stored item, and vellum does not store responses: send the item itself (with the AI SDK, set providerOptions.openai.store to false)"
        : `vellum implements the input items ${implementedItemTypes}, not ${typeOf(issue.input)}`,
  }),
);

const input = textOrList(
  (text) => ({ type: "message", role: "user", content: text }),
  z.array(inputItem, { error: "must be a string or a list of input items" }).min(1, {
    error: "must hold at least one item",
  }),
);

/** A function the model may call, named as OpenAI restricts function names. */
const functionTool = z.strictObject({
  type: z.literal("function", {
    error: (issue) => `vellum implements function tools only, not ${JSON.stringify(issue.input)}`,
  }),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, { error: "must be 1-64 letters, digits, _ or -" }),
  description: z.string().nullish(),
  parameters: jsonObject.nullish(),
  strict: z.boolean().nullish(),
});

const toolChoice = z.union(
  [z.enum(["none", "auto", "required"]), z.strictObject({ type: z.literal("function"), name: z.string() })],
  { error: 'must be "none", "auto", "required" or { type: "function", name }' },
);

/** What the text output must be: free text, any JSON object, or JSON valid for a schema. */
const textFormat = z.discriminatedUnion(
  "type",
  [
    z.strictObject({ type: z.literal("text") }),
    z.strictObject({ type: z.literal("json_object") }),
    z.strictObject({
      type: z.literal("json_schema"),
      name: z.string(),
      schema: jsonObject,
      description: z.string().nullish(),
      strict: z.boolean().nullish(),
    }),
  ],
  { error: "must be one of text, json_object, json_schema" },
);

/** OpenAI's limits on metadata: 16 pairs, keys of up to 64 characters, values of up to 512. */
const metadata = z
  .record(z.string().max(64), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 16, { error: "holds at most 16 key-value pairs" });

export const responsesBody = z.strictObject({
  model: z.string().nullish(),
  input,
  instructions: z.string().nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  tools: z.array(functionTool).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z.strictObject({ format: textFormat.nullish() }).nullish(),
  stream: z.boolean().nullish(),
  /** Nothing is stored: false and absent are the same, true is refused. */
  store: z
    .literal(false, {
      error: "vellum does not store responses: send store: false or leave it out",
    })
    .nullish(),
  previous_response_id: z
    .undefined({
      error:
        "vellum does not store responses, so there is none to continue: send the whole conversation in input",
    })
    .nullish(),
  metadata: metadata.nullish(),
  user: z.string().nullish(),
});
export type ResponsesBody = z.infer<typeof responsesBody>;

function isObjectText(text: string): boolean {
  if (text.trim() === "") return true;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

function isItemReference(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as { type?: unknown }).type === "item_reference";
}

/** An item or part in an error message: its type when it has one. */
function typeOf(v: unknown): string {
  const type = typeof v === "object" && v !== null ? (v as { type?: unknown }).type : undefined;
  return type === undefined ? "this value" : JSON.stringify(type);
}

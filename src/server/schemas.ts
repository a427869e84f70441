import { z } from "zod";

/**
 * Request bodies, as OpenAI and vLLM define them. zod checks types and shapes; ranges of sampling
 * parameters are checked once, by the engine's samplingParams(), so there is one rule per parameter.
 * Objects are strict: a field vellum does not implement (`suffix`, `use_beam_search`, a misspelling) is a
 * 400 naming it, never silently ignored. `null` means "not given", as in OpenAI.
 */

const tokenIds = z.array(z.number().int().nonnegative());
const jsonObject = z.record(z.string(), z.unknown());
const optionalInt = z.number().int().nullish();
const optionalNumber = z.number().nullish();

/** Fields shared by /v1/completions and /v1/chat/completions. */
const samplingFields = {
  model: z.string().nullish(),
  max_tokens: optionalInt,
  temperature: optionalNumber,
  top_p: optionalNumber,
  top_k: optionalInt,
  min_p: optionalNumber,
  n: z.number().int().min(1).max(128).nullish(),
  stop: z
    .union([z.string().min(1), z.array(z.string().min(1))], {
      error: "must be a non-empty string or a list of non-empty strings",
    })
    .nullish(),
  stop_token_ids: tokenIds.nullish(),
  seed: optionalInt,
  presence_penalty: optionalNumber,
  frequency_penalty: optionalNumber,
  repetition_penalty: optionalNumber,
  ignore_eos: z.boolean().nullish(),
  min_tokens: z.number().int().nonnegative().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  priority: optionalInt,
  user: z.string().nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, { error: "keys must be token ids" }), z.number()).nullish(),
  allowed_token_ids: tokenIds.min(1).nullish(),
  bad_words: z.array(z.string().min(1)).nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  skip_special_tokens: z.boolean().nullish(),
  /** Keep only the prompt's last k tokens; -1 = as many as the context allows (vLLM's). */
  truncate_prompt_tokens: z.number().int().min(-1).nullish(),
  prompt_logprobs: z.number().int().min(0).max(20).nullish(),
  response_format: z
    .discriminatedUnion("type", [
      z.strictObject({ type: z.literal("text") }),
      z.strictObject({ type: z.literal("json_object") }),
      z.strictObject({
        type: z.literal("json_schema"),
        json_schema: z.strictObject({
          name: z.string(),
          description: z.string().nullish(),
          schema: jsonObject.nullish(),
          strict: z.boolean().nullish(),
        }),
      }),
    ])
    .nullish(),
  /** vLLM's: exactly one constraint. */
  structured_outputs: z
    .strictObject({
      json: z.union([z.string(), jsonObject]).nullish(),
      json_object: z.boolean().nullish(),
      regex: z.string().nullish(),
      choice: z.array(z.string()).min(1).nullish(),
      grammar: z.string().nullish(),
      structural_tag: z.string().nullish(),
    })
    .nullish(),
};

/**
 * Whether special-token text in a prompt string becomes control tokens (llama.cpp's name); the server's
 * --no-parse-special sets the default.
 */
const parseSpecial = z.boolean().nullish();

/** Chat content is always plain text, so a chat request that asks for parse_special is refused. */
const noParseSpecial = z
  .undefined({
    error:
      "chat message content is always plain text; parse_special applies to prompts (/v1/completions, /tokenize with prompt)",
  })
  .optional();

export const completionBody = z.strictObject({
  ...samplingFields,
  prompt: z.union(
    [z.string(), z.array(z.string()).min(1), tokenIds.min(1), z.array(tokenIds.min(1)).min(1)],
    {
      error: "must be a string, a non-empty list of strings, of token ids, or of non-empty token-id lists",
    },
  ),
  logprobs: z.number().int().min(0).nullish(),
  echo: z.boolean().nullish(),
  parse_special: parseSpecial,
});
export type CompletionBody = z.infer<typeof completionBody>;

const content = z.union(
  [z.string(), z.array(z.strictObject({ type: z.literal("text"), text: z.string() }))],
  {
    error: "must be a string or a list of text parts ({ type: 'text', text })",
  },
);

/** A call the assistant made, as a history message carries it; `arguments` is JSON text. */
const toolCall = z.strictObject({
  id: z.string(),
  type: z.literal("function"),
  function: z.strictObject({ name: z.string(), arguments: z.string() }),
});

const message = z.discriminatedUnion(
  "role",
  [
    z.strictObject({
      role: z.enum(["system", "developer", "user"]),
      content,
      name: z.string().nullish(),
    }),
    z.strictObject({
      role: z.literal("assistant"),
      content: content.nullish(),
      name: z.string().nullish(),
      tool_calls: z.array(toolCall).nullish(),
    }),
    z.strictObject({ role: z.literal("tool"), content, tool_call_id: z.string() }),
  ],
  { error: "role must be one of system, developer, user, assistant, tool" },
);

const messages = z.array(message).min(1);

/** A function the model may call; its name as OpenAI restricts it. */
const functionTool = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, { error: "must be 1-64 letters, digits, _ or -" }),
    description: z.string().nullish(),
    parameters: jsonObject.nullish(),
    strict: z.boolean().nullish(),
  }),
});

const toolChoice = z.union(
  [
    z.enum(["none", "auto", "required"]),
    z.strictObject({ type: z.literal("function"), function: z.strictObject({ name: z.string() }) }),
  ],
  { error: 'must be "none", "auto", "required" or { type: "function", function: { name } }' },
);

export const chatBody = z.strictObject({
  ...samplingFields,
  messages,
  max_completion_tokens: optionalInt,
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  parse_special: noParseSpecial,
  tools: z.array(functionTool).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
});
export type ChatBody = z.infer<typeof chatBody>;
export type ChatBodyMessage = z.infer<typeof message>;
export type ChatBodyTool = z.infer<typeof functionTool>;

const tokenizePrompt = z.strictObject({
  model: z.string().nullish(),
  prompt: z.string(),
  add_special_tokens: z.boolean().nullish(),
  parse_special: parseSpecial,
});
const tokenizeMessages = z.strictObject({
  model: z.string().nullish(),
  messages,
  add_generation_prompt: z.boolean().nullish(),
  add_special_tokens: z.boolean().nullish(),
  parse_special: noParseSpecial,
});

/**
 * vLLM's /tokenize: chat messages rendered with the model's template when the body has `messages`, else a
 * prompt. Choosing the shape by that key (not a union) lets a bad field be named in the error.
 */
export function parseTokenizeBody(
  body: unknown,
): z.infer<typeof tokenizePrompt> | z.infer<typeof tokenizeMessages> {
  const chat = typeof body === "object" && body !== null && "messages" in body;
  return chat ? tokenizeMessages.parse(body) : tokenizePrompt.parse(body);
}

/** /tokenize's two shapes as one, for the OpenAPI document (parseTokenizeBody picks one to name a bad field). */
export const tokenizeBody = z.union([tokenizePrompt, tokenizeMessages]);

export const detokenizeBody = z.strictObject({ model: z.string().nullish(), tokens: tokenIds });

import { z } from "zod";

/**
 * Request bodies, as OpenAI and vLLM define them. zod checks types and shapes; ranges of sampling
 * parameters are checked once, by the engine's samplingParams(), so there is one rule per parameter.
 * Unknown fields are ignored (clients send many we do not use); `null` means "not given", as in OpenAI.
 */

const tokenIds = z.array(z.number().int().nonnegative());
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

export const completionBody = z.object({
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

const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(z.object({ type: z.literal("text"), text: z.string() }))], {
    error: "must be a string or a list of text parts ({ type: 'text', text })",
  }),
  name: z.string().nullish(),
});

const messages = z.array(message).min(1);

export const chatBody = z.object({
  ...samplingFields,
  messages,
  max_completion_tokens: optionalInt,
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  parse_special: noParseSpecial,
});
export type ChatBody = z.infer<typeof chatBody>;
export type ChatBodyMessage = z.infer<typeof message>;

const tokenizePrompt = z.object({
  model: z.string().nullish(),
  prompt: z.string(),
  add_special_tokens: z.boolean().nullish(),
  parse_special: parseSpecial,
});
const tokenizeMessages = z.object({
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

export const detokenizeBody = z.object({ model: z.string().nullish(), tokens: tokenIds });

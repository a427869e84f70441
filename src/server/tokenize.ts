import type { FastifyRequest } from "fastify";
import { chatPromptIds } from "./chat.js";
import type { ServerContext } from "./context.js";
import { encodeTexts } from "./encode.js";
import { ApiError } from "./errors.js";
import { checkModel } from "./generation.js";
import { detokenizeBody, parseTokenizeBody } from "./schemas.js";

/** POST /tokenize (vLLM's shape): `{ count, max_model_len, tokens }`, of a prompt or of chat messages. */
export async function tokenize(ctx: ServerContext, request: FastifyRequest) {
  const body = parseTokenizeBody(request.body);
  checkModel(ctx, body.model);
  let tokens: number[];
  if ("prompt" in body) {
    const addSpecial = body.add_special_tokens ?? true;
    const parseSpecial = body.parse_special ?? ctx.parseSpecial;
    [tokens] = await encodeTexts(ctx, [{ text: body.prompt, addSpecial, parseSpecial }], "prompt");
  } else {
    tokens = await chatPromptIds(ctx, body.messages, body.add_generation_prompt ?? true);
  }
  return {
    count: tokens.length,
    max_model_len: ctx.engine.maxModelLen,
    tokens,
    token_strs: null,
  };
}

/** POST /detokenize (vLLM's shape): `{ prompt }`. */
export function detokenize(ctx: ServerContext, request: FastifyRequest) {
  const body = detokenizeBody.parse(request.body);
  checkModel(ctx, body.model);
  const { vocabSize } = ctx.model.tokenizer;
  const bad = body.tokens.find((id) => id >= vocabSize);
  if (bad !== undefined)
    throw new ApiError(400, `token id ${bad} is outside the vocabulary (size ${vocabSize})`, "tokens");
  return { prompt: ctx.model.tokenizer.decode(body.tokens) };
}

import type { FastifyRequest } from "fastify";
import { chatPromptIds } from "./chat.js";
import type { ServerContext } from "./context.js";
import { ApiError } from "./errors.js";
import { checkModel } from "./generation.js";
import { detokenizeBody, parseTokenizeBody } from "./schemas.js";

/** POST /tokenize (vLLM's shape): `{ count, max_model_len, tokens }`. */
export function tokenize(ctx: ServerContext, request: FastifyRequest) {
  const body = parseTokenizeBody(request.body);
  checkModel(ctx, body.model);
  const addSpecial = body.add_special_tokens ?? true;
  const tokens =
    "prompt" in body
      ? ctx.model.tokenizer.encode(body.prompt, { addSpecial })
      : chatPromptIds(ctx.model, body.messages, body.add_generation_prompt ?? true);
  return {
    count: tokens.length,
    max_model_len: ctx.engine.core.config.maxModelLen,
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

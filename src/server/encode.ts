import { InputError } from "../model/errors.js";
import type { EncodeRequest } from "../model/tokenizer/tokenizer.js";
import type { ServerContext } from "./context.js";
import { ApiError } from "./errors.js";

/**
 * Text to token ids for every handler: through the server's off-thread tokenizer, so a large prompt is
 * never tokenized on the event loop. A tokenizer's InputError is a 400 naming `param`.
 */
export async function encodeTexts(
  ctx: ServerContext,
  requests: readonly EncodeRequest[],
  param: string,
): Promise<number[][]> {
  try {
    return await ctx.encoder.encode(requests);
  } catch (err) {
    if (err instanceof InputError) throw new ApiError(400, err.message, param);
    throw err;
  }
}

import { parentPort, workerData } from "node:worker_threads";
import { InputError } from "../errors.js";
import { createTokenizer } from "./create.js";
import { HfTokenizer } from "./hf-tokenizer.js";
import type { EncodeRequest, Tokenizer, TokenizerRecipe } from "./tokenizer.js";

/**
 * The worker thread of OffThreadTokenizer: builds the same tokenizer from its recipe, then answers each
 * batch of encode requests with the ids (as transferred Int32Arrays) or the error.
 */

export interface EncodeJob {
  id: number;
  requests: readonly EncodeRequest[];
}

export type EncodeReply =
  | { id: number; ids: Int32Array[] }
  | { id: number; error: { message: string; inputError: boolean } };

function tokenizerFromRecipe(recipe: TokenizerRecipe): Tokenizer {
  if (recipe.kind === "vocab") return createTokenizer(recipe.spec, recipe.source);
  return new HfTokenizer(recipe.json, recipe.config, recipe.source, recipe.extraStopIds);
}

const port = parentPort;
if (port !== null) {
  const tokenizer = tokenizerFromRecipe(workerData as TokenizerRecipe);
  port.on("message", ({ id, requests }: EncodeJob) => {
    let reply: EncodeReply;
    try {
      reply = { id, ids: requests.map(({ text, ...opts }) => new Int32Array(tokenizer.encode(text, opts))) };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      reply = { id, error: { message, inputError: e instanceof InputError } };
    }
    port.postMessage(reply, "ids" in reply ? reply.ids.map((a) => a.buffer as ArrayBuffer) : []);
  });
}

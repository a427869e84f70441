import { setMaxListeners } from "node:events";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AdmissionError, type ValidSamplingParams } from "../engine/api.js";
import {
  type CompletionDelta,
  type CompletionOutput,
  collectCompletions,
} from "../engine/output-processor.js";
import type { ServerContext } from "./context.js";
import { ApiError } from "./errors.js";
import type { GenerationTally } from "./request-log.js";

/** One prompt queued in the engine: its n completions arrive on `stream`. */
export interface Generation {
  promptIds: number[];
  stream: AsyncIterableIterator<CompletionDelta>;
}

/** Longest prefix of a client's unknown model name that its 404 repeats. */
const shownModelNameLength = 80;

/** 404 unless `model` is absent or the served model's name. */
export function checkModel(ctx: ServerContext, model: string | null | undefined): void {
  if (model && model !== ctx.servedModelName) {
    const shown = model.length > shownModelNameLength ? `${model.slice(0, shownModelNameLength)}…` : model;
    throw new ApiError(404, `The model \`${shown}\` does not exist.`, "model");
  }
}

/**
 * 400 for a request that asks for more sequences (prompts × n) than one request may, or than the whole
 * queue holds (it could never be admitted). Called before the prompts are tokenized, so that a small body
 * fanning out into many sequences costs nothing. `promptParam` names the prompt field (`prompt`, `messages`).
 */
export function checkRequestSize(
  ctx: ServerContext,
  numPrompts: number,
  n: number,
  promptParam: string,
): void {
  const limits: [number, string][] = [
    [ctx.maxSeqsPerRequest, "this server allows in one request"],
    [ctx.maxQueue, "this server's whole queue holds"],
  ];
  const total = numPrompts * n;
  const exceeded = limits.filter(([limit]) => limit > 0 && total > limit).sort((a, b) => a[0] - b[0])[0];
  if (!exceeded) return;
  const [limit, what] = exceeded;
  throw new ApiError(
    400,
    `${total} sequences (${numPrompts} prompt${numPrompts === 1 ? "" : "s"} × n ${n}) are more than ${what} (${limit})`,
    numPrompts > limit ? promptParam : "n",
  );
}

/**
 * Queues one engine request per prompt, all or none: an invalid request, one that can never fit, or a
 * full queue throws before anything streams. The requests are aborted when the client disconnects
 * (their KV blocks freed at once) or when shutdown aborts everything in `ctx.inflight`.
 */
export function startGenerations(
  ctx: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  prompts: number[][],
  params: ValidSamplingParams,
  opts: { priority?: number; promptParam: string },
): Generation[] {
  const { vocabSize } = ctx.model.tokenizer;
  for (const ids of prompts) {
    const bad = ids.find((id) => id >= vocabSize);
    if (bad !== undefined)
      throw new ApiError(
        400,
        `token id ${bad} is outside the vocabulary (size ${vocabSize})`,
        opts.promptParam,
      );
  }
  const paramIds: [string, Iterable<number>][] = [
    ["stop_token_ids", params.stopTokenIds],
    ["logit_bias", params.logitBias.keys()],
    ["allowed_token_ids", params.allowedTokenIds],
  ];
  for (const [param, ids] of paramIds) {
    const bad = [...ids].find((id) => id >= vocabSize);
    if (bad !== undefined)
      throw new ApiError(
        400,
        `${param}: token id ${bad} is outside the vocabulary (size ${vocabSize})`,
        param,
      );
  }
  if (ctx.maxQueue > 0) {
    const s = ctx.engine.stats();
    if (s.numRunning + s.numWaiting + prompts.length * params.n > ctx.maxQueue) {
      throw new ApiError(
        503,
        `the server is at its queue limit (${ctx.maxQueue} sequences); retry later`,
        null,
        1,
      );
    }
  }

  const controller = new AbortController();
  // Every prompt's generation listens on the one signal.
  setMaxListeners(prompts.length, controller.signal);
  const generations: Generation[] = [];
  try {
    prompts.forEach((promptIds, i) => {
      const requestId = prompts.length === 1 ? request.id : `${request.id}-${i}`;
      const stream = ctx.engine.generate(promptIds, params, {
        requestId,
        priority: opts.priority,
        signal: controller.signal,
      });
      generations.push({ promptIds, stream });
    });
  } catch (err) {
    for (const g of generations) void g.stream.return?.();
    throw err instanceof AdmissionError ? new ApiError(400, err.message, opts.promptParam) : err;
  }
  ctx.inflight.add(controller);
  reply.raw.on("close", () => {
    ctx.inflight.delete(controller);
    if (!reply.raw.writableFinished) controller.abort();
  });
  return generations;
}

/**
 * Reads a generation to its end: its n completions in index order, each delta counted in the tally as
 * the choice numbered `firstChoice` + its index.
 */
export function collect(
  stream: AsyncIterable<CompletionDelta>,
  tally: GenerationTally,
  firstChoice = 0,
): Promise<CompletionOutput[]> {
  return collectCompletions(stream, (delta) => tally.add(delta, firstChoice));
}

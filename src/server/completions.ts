import type { FastifyReply, FastifyRequest } from "fastify";
import type { Tokenizer } from "../model/tokenizer/tokenizer.js";
import { badWordIds } from "./bad-words.js";
import type { ServerContext } from "./context.js";
import { encodeTexts } from "./encode.js";
import { ApiError, toApiError } from "./errors.js";
import { checkModel, checkRequestSize, collect, type Generation, startGenerations } from "./generation.js";
import { completionLogprobs, promptLogprobs } from "./logprobs.js";
import { GenerationTally, noteGeneration } from "./request-log.js";
import { samplingParamsFrom } from "./sampling.js";
import { type CompletionBody, completionBody } from "./schemas.js";
import { SseWriter } from "./sse.js";
import { structuredOutputSpec, withConstraint } from "./structured-output.js";
import { truncatePrompt } from "./truncate-prompt.js";

/** OpenAI's default max_tokens for /v1/completions. */
const defaultMaxTokens = 16;

/** What both response paths need: the generations and how to number and shape their choices. */
interface CompletionJob {
  body: CompletionBody;
  tokenizer: Tokenizer;
  generations: Generation[];
  n: number;
  /** Alternatives per token in `logprobs`. */
  topN: number;
  /** Per prompt: the text put before its choices (the prompt itself with echo, else ""). */
  echoTexts: string[];
  tally: GenerationTally;
  /** id, object, created, model: the same on every response object and chunk. */
  header: { id: string; object: "text_completion"; created: number; model: string };
}

/**
 * POST /v1/completions. Each prompt of the list gets n choices, numbered prompt × n + completion as
 * OpenAI numbers them.
 */
export async function completions(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply) {
  const body = completionBody.parse(request.body);
  checkModel(ctx, body.model);
  checkRequestSize(ctx, promptCount(body.prompt), body.n ?? 1, "prompt");
  if (body.echo && body.logprobs != null) {
    throw new ApiError(400, "echo together with logprobs is not supported", "echo");
  }
  const topN = body.logprobs ?? 0;
  // The engine returns logprobs only when asked for at least one alternative; logprobs: 0 shows none of them.
  const engineLogprobs = body.logprobs == null ? 0 : Math.max(topN, 1);
  const badWords = await badWordIds(ctx, body.bad_words ?? []);
  const params = await withConstraint(
    ctx,
    structuredOutputSpec(body),
    samplingParamsFrom(body, body.max_tokens ?? defaultMaxTokens, engineLogprobs, { badWords }),
  );
  const tokenizer = ctx.model.tokenizer;
  const prompts = (await promptIds(ctx, body)).map((ids) =>
    truncatePrompt(ids, body.truncate_prompt_tokens, ctx.engine.maxModelLen),
  );
  const generations = startGenerations(ctx, request, reply, prompts, params, {
    priority: body.priority ?? undefined,
    promptParam: "prompt",
  });
  const tally = new GenerationTally(
    prompts.reduce((sum, ids) => sum + ids.length, 0),
    prompts.length * params.n,
  );
  noteGeneration(request, tally);
  const job: CompletionJob = {
    body,
    tokenizer,
    generations,
    n: params.n,
    topN,
    echoTexts: body.echo ? promptTexts(tokenizer, body.prompt, prompts) : prompts.map(() => ""),
    tally,
    header: {
      id: `cmpl-${request.id}`,
      object: "text_completion",
      created: Math.floor(Date.now() / 1000),
      model: ctx.servedModelName,
    },
  };
  if (body.stream) return stream(job, reply);
  return respond(job);
}

/** The whole response at once, when every completion has finished. */
async function respond(job: CompletionJob) {
  const { body, tokenizer, n, topN, echoTexts, tally } = job;
  const results = await Promise.all(job.generations.map((g, p) => collect(g.stream, tally, p * n)));
  const choices = results.flatMap((completionsOfPrompt, p) =>
    completionsOfPrompt.map((c, i) => ({
      index: p * n + i,
      text: echoTexts[p] + c.text,
      logprobs: body.logprobs == null ? null : completionLogprobs(tokenizer, c.logprobs, topN, 0).logprobs,
      finish_reason: c.finishReason,
      stop_reason: c.stopReason ?? null,
      ...(c.promptLogprobs ? { prompt_logprobs: promptLogprobs(tokenizer, c.promptLogprobs) } : {}),
    })),
  );
  return { ...job.header, choices, usage: tally.usage };
}

/** One chunk per delta that carries text, logprobs or the finish; `usage` last when asked for. */
async function stream(job: CompletionJob, reply: FastifyReply) {
  const { body, tokenizer, n, topN, tally } = job;
  const sse = new SseWriter(reply);
  const includeUsage = body.stream_options?.include_usage ?? false;
  const chunk = (choice: object) => ({
    ...job.header,
    choices: [choice],
    ...(includeUsage ? { usage: null } : {}),
  });
  const streamPrompt = async (g: Generation, p: number) => {
    if (body.echo) {
      for (let i = 0; i < n; i++) {
        sse.send(chunk({ index: p * n + i, text: job.echoTexts[p], logprobs: null, finish_reason: null }));
      }
    }
    const textOffsets: number[] = [];
    for await (const delta of g.stream) {
      tally.add(delta, p * n);
      let logprobs = null;
      if (body.logprobs != null) {
        const shaped = completionLogprobs(tokenizer, delta.logprobs, topN, textOffsets[delta.index] ?? 0);
        textOffsets[delta.index] = shaped.end;
        logprobs = shaped.logprobs;
      }
      if (delta.text === "" && !delta.finished && logprobs === null) continue;
      sse.send(
        chunk({
          index: p * n + delta.index,
          text: delta.text,
          logprobs,
          finish_reason: delta.finished ? (delta.finishReason ?? "length") : null,
          stop_reason: delta.stopReason ?? null,
        }),
      );
    }
  };
  try {
    await Promise.all(job.generations.map(streamPrompt));
    if (includeUsage) sse.send({ ...job.header, choices: [], usage: tally.usage });
  } catch (err) {
    sse.send(toApiError(err).body);
  }
  sse.done();
  return reply;
}

/** How many prompts `prompt` holds: one string or one token-id list, else one per item. */
function promptCount(prompt: CompletionBody["prompt"]): number {
  if (typeof prompt === "string" || prompt.every((p) => typeof p === "number")) return 1;
  return prompt.length;
}

/**
 * The prompt(s) as token ids: strings are encoded with the model's BOS handling (special-token text as
 * parse_special says), ids are used as given.
 */
async function promptIds(ctx: ServerContext, body: CompletionBody): Promise<number[][]> {
  const { prompt } = body;
  const parseSpecial = body.parse_special ?? ctx.parseSpecial;
  const encode = (texts: string[]) =>
    encodeTexts(
      ctx,
      texts.map((text) => ({ text, parseSpecial })),
      "prompt",
    );
  if (typeof prompt === "string") return encode([prompt]);
  if (prompt.every((p) => typeof p === "number")) return [prompt];
  if (prompt.every((p) => typeof p === "string")) return encode(prompt);
  return prompt;
}

/** Each prompt as text, for echo: as the client wrote it, or decoded when given as token ids. */
function promptTexts(tokenizer: Tokenizer, prompt: CompletionBody["prompt"], ids: number[][]): string[] {
  if (typeof prompt === "string") return [prompt];
  return ids.map((p, i) => {
    const item = prompt[i];
    return typeof item === "string" ? item : tokenizer.decode(p);
  });
}

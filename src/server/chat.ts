import type { FastifyReply, FastifyRequest } from "fastify";
import { type ChatMessage, chatPrompt } from "../model/chat-template.js";
import { InputError } from "../model/errors.js";
import type { EncodeRequest, Tokenizer } from "../model/tokenizer/tokenizer.js";
import { badWordIds } from "./bad-words.js";
import type { ServerContext } from "./context.js";
import { encodeTexts } from "./encode.js";
import { ApiError, toApiError } from "./errors.js";
import { checkModel, checkRequestSize, collect, type Generation, startGenerations } from "./generation.js";
import { chatLogprobs, promptLogprobs } from "./logprobs.js";
import { GenerationTally, noteGeneration } from "./request-log.js";
import { samplingParamsFrom } from "./sampling.js";
import { type ChatBody, type ChatBodyMessage, chatBody } from "./schemas.js";
import { SseWriter } from "./sse.js";
import { truncatePrompt } from "./truncate-prompt.js";

/** POST /v1/chat/completions: the messages rendered with the model's chat template, n choices. */
export async function chatCompletions(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply) {
  const body = chatBody.parse(request.body);
  checkModel(ctx, body.model);
  checkRequestSize(ctx, 1, body.n ?? 1, "messages");
  const promptIds = truncatePrompt(
    await chatPromptIds(ctx, body.messages),
    body.truncate_prompt_tokens,
    ctx.engine.maxModelLen,
  );
  const topN = body.top_logprobs ?? 0;
  if (topN > 0 && !body.logprobs)
    throw new ApiError(400, "top_logprobs needs logprobs: true", "top_logprobs");
  // Unlike completions, chat's default is "as many tokens as the context has room for" (vLLM's).
  const maxTokens =
    body.max_completion_tokens ?? body.max_tokens ?? Math.max(1, ctx.engine.maxModelLen - promptIds.length);
  const badWords = await badWordIds(ctx, body.bad_words ?? []);
  const params = samplingParamsFrom(body, maxTokens, body.logprobs ? Math.max(topN, 1) : 0, badWords);
  const [generation] = startGenerations(ctx, request, reply, [promptIds], params, {
    priority: body.priority ?? undefined,
    promptParam: "messages",
  });
  const tally = new GenerationTally(promptIds.length, params.n);
  noteGeneration(request, tally);
  const job: ChatJob = {
    body,
    tokenizer: ctx.model.tokenizer,
    generation,
    n: params.n,
    topN,
    tally,
    header: {
      id: `chatcmpl-${request.id}`,
      created: Math.floor(Date.now() / 1000),
      model: ctx.servedModelName,
    },
  };
  if (body.stream) return stream(job, reply);
  return respond(job);
}

/** What both response paths need. */
interface ChatJob {
  body: ChatBody;
  tokenizer: Tokenizer;
  generation: Generation;
  n: number;
  /** Alternatives per token in `logprobs.content[].top_logprobs`. */
  topN: number;
  tally: GenerationTally;
  /** id, created, model: the same on the response object and every chunk. */
  header: { id: string; created: number; model: string };
}

/** The whole response at once, when every choice has finished. */
async function respond(job: ChatJob) {
  const { body, tokenizer, topN, tally } = job;
  const completions = await collect(job.generation.stream, tally);
  return {
    ...job.header,
    object: "chat.completion",
    choices: completions.map((c, i) => ({
      index: i,
      message: { role: "assistant", content: c.text },
      logprobs: body.logprobs ? { content: chatLogprobs(tokenizer, c.logprobs, topN) } : null,
      finish_reason: c.finishReason,
      stop_reason: c.stopReason ?? null,
    })),
    usage: tally.usage,
    // vLLM's: on the response, since the choices share the prompt.
    ...(completions[0].promptLogprobs
      ? { prompt_logprobs: promptLogprobs(tokenizer, completions[0].promptLogprobs) }
      : {}),
  };
}

/** A `delta.role` chunk per choice, then content chunks, the finish, and `usage` last when asked for. */
async function stream(job: ChatJob, reply: FastifyReply) {
  const { body, tokenizer, topN, tally } = job;
  const sse = new SseWriter(reply);
  const includeUsage = body.stream_options?.include_usage ?? false;
  const chunk = (choice: object) => ({
    ...job.header,
    object: "chat.completion.chunk",
    choices: [choice],
    ...(includeUsage ? { usage: null } : {}),
  });
  for (let i = 0; i < job.n; i++) {
    sse.send(
      chunk({ index: i, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }),
    );
  }
  try {
    for await (const delta of job.generation.stream) {
      tally.add(delta);
      const logprobs = body.logprobs ? { content: chatLogprobs(tokenizer, delta.logprobs, topN) } : null;
      if (delta.text === "" && !delta.finished && logprobs === null) continue;
      sse.send(
        chunk({
          index: delta.index,
          delta: delta.text === "" ? {} : { content: delta.text },
          logprobs,
          finish_reason: delta.finished ? (delta.finishReason ?? "length") : null,
          stop_reason: delta.stopReason ?? null,
        }),
      );
    }
    if (includeUsage)
      sse.send({ ...job.header, object: "chat.completion.chunk", choices: [], usage: tally.usage });
  } catch (err) {
    sse.send(toApiError(err).body);
  }
  sse.done();
  return reply;
}

/**
 * The conversation as prompt token ids, ending with the assistant's cue; message content is plain text
 * (see chatPrompt).
 */
export async function chatPromptIds(
  ctx: ServerContext,
  messages: readonly ChatBodyMessage[],
  addGenerationPrompt = true,
): Promise<number[]> {
  const plain: ChatMessage[] = messages.map((m) => ({
    role: m.role,
    content: typeof m.content === "string" ? m.content : (m.content ?? []).map((part) => part.text).join(""),
  }));
  let prompt: EncodeRequest;
  try {
    prompt = chatPrompt(ctx.model, plain, { addGenerationPrompt });
  } catch (err) {
    if (err instanceof InputError) throw new ApiError(400, err.message, "messages");
    throw err;
  }
  const [ids] = await encodeTexts(ctx, [prompt], "messages");
  return ids;
}

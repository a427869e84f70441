import type { FastifyReply, FastifyRequest } from "fastify";
import { ChatFieldError, chatPrompt } from "../model/chat-template.js";
import { InputError } from "../model/errors.js";
import type { EncodeRequest, Tokenizer } from "../model/tokenizer/tokenizer.js";
import type { ToolCallFormat, ToolDefinition } from "../model/tool-calls/tool-call.js";
import { badWordIds } from "./bad-words.js";
import {
  chatMessages,
  chatTools,
  openAiToolCall,
  parsedFormat,
  parseToolCalls,
  ToolCallStreams,
  toolCallDelta,
  toolSamplingParams,
} from "./chat-tools.js";
import type { ServerContext } from "./context.js";
import { encodeTexts } from "./encode.js";
import { ApiError, toApiError } from "./errors.js";
import { checkModel, checkRequestSize, collect, type Generation, startGenerations } from "./generation.js";
import { chatLogprobs, promptLogprobs } from "./logprobs.js";
import { GenerationTally, noteGeneration } from "./request-log.js";
import { samplingParamsFrom } from "./sampling.js";
import { type ChatBody, type ChatBodyMessage, chatBody } from "./schemas.js";
import { SseWriter } from "./sse.js";
import { oneConstraint, structuredOutputSpec, withConstraint } from "./structured-output.js";
import { truncatePrompt } from "./truncate-prompt.js";

/** POST /v1/chat/completions: the messages rendered with the model's chat template, n choices. */
export async function chatCompletions(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply) {
  const body = chatBody.parse(request.body);
  checkModel(ctx, body.model);
  checkRequestSize(ctx, 1, body.n ?? 1, "messages");
  const tools = chatTools(ctx.model.chatTemplate, body);
  const promptIds = truncatePrompt(
    await chatPromptIds(ctx, body.messages, true, tools?.definitions),
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
  const { forcedCalls, ...toolParams } = toolSamplingParams(tools, ctx.model.tokenizer);
  const params = await withConstraint(
    ctx,
    oneConstraint(forcedCalls, structuredOutputSpec(body)),
    samplingParamsFrom(body, maxTokens, body.logprobs ? Math.max(topN, 1) : 0, { badWords, ...toolParams }),
  );
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
    callFormat: parsedFormat(tools),
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
  /** The format of the tool calls read out of the text: undefined without tools or with tool_choice "none". */
  callFormat: ToolCallFormat | undefined;
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
      ...replyOf(job.callFormat, c.text, c.finishReason),
      logprobs: body.logprobs ? { content: chatLogprobs(tokenizer, c.logprobs, topN) } : null,
      stop_reason: c.stopReason ?? null,
    })),
    usage: tally.usage,
    // vLLM's: on the response, since the choices share the prompt.
    ...(completions[0].promptLogprobs
      ? { prompt_logprobs: promptLogprobs(tokenizer, completions[0].promptLogprobs) }
      : {}),
  };
}

/**
 * A choice's message and finish_reason: with tools, the calls parsed out of its text (`content` null when
 * it holds nothing else, finish_reason "tool_calls" when it stopped after calling).
 */
function replyOf(format: ToolCallFormat | undefined, text: string, finishReason: string) {
  if (format === undefined)
    return { message: { role: "assistant", content: text }, finish_reason: finishReason };
  const { content, toolCalls } = parseToolCalls(format, text);
  if (toolCalls.length === 0) return { message: { role: "assistant", content }, finish_reason: finishReason };
  return {
    message: {
      role: "assistant",
      content: content === "" ? null : content,
      tool_calls: toolCalls.map(openAiToolCall),
    },
    finish_reason: finishReason === "stop" ? "tool_calls" : finishReason,
  };
}

/**
 * A `delta.role` chunk per choice, then content chunks (with tools: content and tool-call chunks, see
 * toolCallDelta), the finish, and `usage` last when asked for.
 */
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
  const toolCalls = job.callFormat && new ToolCallStreams(job.callFormat);
  try {
    for await (const delta of job.generation.stream) {
      tally.add(delta);
      const logprobs = body.logprobs ? { content: chatLogprobs(tokenizer, delta.logprobs, topN) } : null;
      const deltas = streamedDeltas(toolCalls, delta.index, delta.text, delta.finished);
      if (deltas.length === 0 && !delta.finished && logprobs === null) continue;
      const last = deltas.pop() ?? {};
      for (const d of deltas)
        sse.send(chunk({ index: delta.index, delta: d, logprobs: null, finish_reason: null }));
      const finishReason = delta.finishReason ?? "length";
      sse.send(
        chunk({
          index: delta.index,
          delta: last,
          logprobs,
          finish_reason: delta.finished
            ? (toolCalls?.finishReason(delta.index, finishReason) ?? finishReason)
            : null,
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

/** The `delta`s of one engine delta's text: its content, or with parsed tools the events it completes. */
function streamedDeltas(
  toolCalls: ToolCallStreams | undefined,
  index: number,
  text: string,
  finished: boolean,
): Record<string, unknown>[] {
  if (toolCalls === undefined) return text === "" ? [] : [{ content: text }];
  return toolCalls.push(index, text, finished).map(toolCallDelta);
}

/**
 * The conversation as prompt token ids, ending with the assistant's cue; message content is plain text
 * (see chatPrompt). `tools` are rendered by the chat template.
 */
export async function chatPromptIds(
  ctx: ServerContext,
  messages: readonly ChatBodyMessage[],
  addGenerationPrompt = true,
  tools?: readonly ToolDefinition[],
): Promise<number[]> {
  let prompt: EncodeRequest;
  try {
    prompt = chatPrompt(ctx.model, chatMessages(messages), { addGenerationPrompt, tools });
  } catch (err) {
    if (err instanceof ChatFieldError) throw new ApiError(400, err.message, err.field);
    if (err instanceof InputError) throw new ApiError(400, err.message, "messages");
    throw err;
  }
  const [ids] = await encodeTexts(ctx, [prompt], "messages");
  return ids;
}

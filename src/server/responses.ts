import type { FastifyReply, FastifyRequest } from "fastify";
import type { CompletionDelta } from "../engine/output-processor.js";
import type { FinishReason } from "../engine/stats.js";
import type { ToolCallEvent, ToolCallParser } from "../model/tool-calls/tool-call.js";
import type { ServerContext } from "./context.js";
import { toApiError } from "./errors.js";
import { checkModel, type Generation, startGenerations } from "./generation.js";
import { GenerationTally, noteGeneration } from "./request-log.js";
import { onChatPath } from "./responses-input.js";
import { type EmitEvent, type OutputItem, ResponseOutput } from "./responses-output.js";
import { type ResponsesBody, responsesBody } from "./responses-schema.js";
import { SseWriter } from "./sse.js";

/**
 * POST /v1/responses: OpenAI's Responses API on the chat path. The input items become chat messages
 * (function calls and their outputs the assistant's tool_calls and role "tool" messages), rendered with the
 * model's chat template and the request's tools; the text is parsed into a message and function calls by
 * the tool-call format of the model (chat-tools.ts). Stateless: nothing is stored, so `store: true` and
 * `previous_response_id` are refused (responses-schema.ts).
 */
export async function responses(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply) {
  const body = responsesBody.parse(request.body);
  checkModel(ctx, body.model);
  const { promptIds, params, callFormat } = await onChatPath(ctx, body);
  const [generation] = startGenerations(ctx, request, reply, [promptIds], params, { promptParam: "input" });
  const tally = new GenerationTally(promptIds.length, 1);
  noteGeneration(request, tally);
  const job: ResponseJob = {
    body,
    generation,
    parser: callFormat?.createParser(),
    tally,
    id: `resp_${request.id}`,
    createdAt: Math.floor(Date.now() / 1000),
    model: ctx.servedModelName,
  };
  if (body.stream) return stream(job, reply);
  return run(job, () => {});
}

/** What both response paths need. */
interface ResponseJob {
  body: ResponsesBody;
  generation: Generation;
  /** Splits the text into content and function calls; undefined: all of it is content. */
  parser: ToolCallParser | undefined;
  tally: GenerationTally;
  id: string;
  createdAt: number;
  model: string;
}

type ResponseStatus = "in_progress" | "completed" | "incomplete" | "cancelled";

/**
 * Generates the response, reporting each step to `emit`: response.created and .in_progress, the output
 * items' events, and response.completed (or .incomplete when cut off). Returns the finished response.
 */
async function run(job: ResponseJob, emit: EmitEvent) {
  emit("response.created", { response: responseObject(job, "in_progress") });
  emit("response.in_progress", { response: responseObject(job, "in_progress") });
  const output = new ResponseOutput(emit);
  const { parser } = job;
  const events = (text: string): ToolCallEvent[] =>
    parser ? parser.push(text) : [{ kind: "content", text }];
  let last: CompletionDelta | undefined;
  for await (const delta of job.generation.stream) {
    job.tally.add(delta);
    for (const event of events(delta.text)) output.add(event);
    last = delta;
  }
  for (const event of parser?.finish() ?? []) output.add(event);
  const status = statusOf(last?.finishReason);
  output.finish(status === "completed" ? "completed" : "incomplete");
  const response = responseObject(job, status, output.items, last);
  emit(status === "completed" ? "response.completed" : "response.incomplete", { response });
  return response;
}

/** The events as Server-Sent Events, each with its type on an `event:` line and its sequence number. */
async function stream(job: ResponseJob, reply: FastifyReply) {
  const sse = new SseWriter(reply);
  let sequenceNumber = 0;
  const emit: EmitEvent = (type, fields) =>
    sse.sendEvent(type, { type, sequence_number: sequenceNumber++, ...fields });
  try {
    await run(job, emit);
  } catch (err) {
    const { message, param } = toApiError(err).body.error;
    emit("error", { code: null, message, param });
  }
  sse.end();
  return reply;
}

/**
 * How the generation ended: a stop (EOS or stop token) completes the response; running out of tokens
 * leaves it incomplete; an abort (server shutdown) cancels it.
 */
function statusOf(finishReason: FinishReason | undefined): ResponseStatus {
  if (finishReason === "stop") return "completed";
  if (finishReason === "abort") return "cancelled";
  return "incomplete";
}

/**
 * The response object: the request's settings as OpenAI echoes them, and, once finished, the output
 * items and usage. `last` is the generation's final delta, which carries its metrics.
 */
function responseObject(
  job: ResponseJob,
  status: ResponseStatus,
  output: OutputItem[] = [],
  last?: CompletionDelta,
) {
  const { body, tally } = job;
  const finished = status !== "in_progress";
  return {
    id: job.id,
    object: "response",
    created_at: job.createdAt,
    status,
    completed_at: status === "completed" ? Math.floor(Date.now() / 1000) : null,
    error: null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: job.model,
    output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: null,
    store: false,
    temperature: body.temperature ?? 1,
    text: { format: body.text?.format ?? { type: "text" } },
    tool_choice: body.tool_choice ?? "auto",
    tools: (body.tools ?? []).map((t) => ({
      ...t,
      strict: t.strict ?? null,
      parameters: t.parameters ?? null,
    })),
    top_p: body.top_p ?? 1,
    truncation: "disabled",
    usage: finished
      ? {
          input_tokens: tally.promptTokens,
          input_tokens_details: { cached_tokens: last?.metrics?.numCachedTokens ?? 0 },
          output_tokens: tally.completionTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: tally.promptTokens + tally.completionTokens,
        }
      : null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

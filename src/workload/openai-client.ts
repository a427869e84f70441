import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { InputError } from "../model/errors.js";
import type { WorkloadPrompt } from "./dataset.js";
import type { RequestRecord } from "./metrics.js";
import { SseParser } from "./sse-parser.js";

export type Endpoint = "completions" | "chat";

/** The server under test. */
export interface Target {
  /** Without the /v1 suffix, e.g. http://127.0.0.1:8000. */
  baseUrl: string;
  endpoint: Endpoint;
  model: string;
  apiKey?: string;
  ignoreEos: boolean;
}

/** Accepts http://host:port, with or without a trailing /v1. */
export function normalizeBaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError(`--base-url "${url}" is not a URL (expected e.g. http://127.0.0.1:8000)`);
  }
  return `${u.origin}${u.pathname.replace(/\/+$/, "").replace(/\/v1$/, "")}`;
}

const checkTimeoutMs = 10_000;

/**
 * Asks GET /v1/models, so that a wrong address or a server that is not OpenAI-compatible is reported
 * once, clearly, before any load is sent. Returns the served model ids.
 */
export async function checkServer(baseUrl: string, apiKey?: string): Promise<string[]> {
  const url = `${baseUrl}/v1/models`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: authHeaders(apiKey),
      signal: AbortSignal.timeout(checkTimeoutMs),
    });
  } catch (err) {
    throw new InputError(`cannot reach the server at ${baseUrl}: ${networkReason(err)}`);
  }
  const text = await response.text();
  let ids: unknown;
  try {
    ids = (JSON.parse(text) as { data: { id: unknown }[] }).data.map((m) => m.id);
  } catch {
    ids = undefined;
  }
  if (!response.ok || !Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== "string")) {
    throw new InputError(
      `${url} did not answer like an OpenAI-compatible server: HTTP ${response.status}, ${response.headers.get("content-type") ?? "no content-type"}, body ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
  return ids as string[];
}

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  if ((err as Error).name === "TimeoutError") return `no answer in ${checkTimeoutMs / 1000} s`;
  return cause?.message ?? (err as Error).message;
}

function authHeaders(apiKey?: string): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

function requestBody(target: Target, prompt: WorkloadPrompt) {
  const common = {
    model: target.model,
    max_tokens: prompt.outputLen,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
    ...(target.ignoreEos ? { ignore_eos: true } : {}),
  };
  if (target.endpoint === "chat")
    return { ...common, messages: [{ role: "user", content: prompt.promptText }] };
  return { ...common, prompt: prompt.textIsPrompt ? prompt.promptText : prompt.promptTokenIds };
}

/**
 * Sends one streaming request and times it as vLLM's client does: TTFT at the first chunk carrying a
 * choice, one inter-token gap per later such chunk, E2E at the end of the stream. Token counts come from
 * the final usage chunk (else one per chunk). Never throws: a failure is a record with `error`. `onFirstToken` is
 * called at the first chunk carrying a choice. It streams through node:http rather than fetch: the load generator
 * shares the machine with the server it measures, and fetch reads each chunk through web streams.
 */
export async function sendRequest(
  target: Target,
  prompt: WorkloadPrompt,
  startOfRun: number,
  onFirstToken?: () => void,
): Promise<RequestRecord> {
  const sent = performance.now();
  const record: RequestRecord = {
    success: false,
    promptTokens: prompt.promptTokenIds.length,
    outputTokens: 0,
    sendTime: (sent - startOfRun) / 1000,
    ttft: 0,
    itl: [],
    e2e: 0,
  };
  const path = target.endpoint === "chat" ? "/v1/chat/completions" : "/v1/completions";
  try {
    const response = await post(
      `${target.baseUrl}${path}`,
      JSON.stringify(requestBody(target, prompt)),
      authHeaders(target.apiKey),
    );
    response.setEncoding("utf8");
    const status = response.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      let text = "";
      for await (const piece of response) text += piece;
      record.error = `HTTP ${status}: ${errorMessage(text)}`;
      return record;
    }
    const type = response.headers["content-type"] ?? "";
    if (!type.startsWith("text/event-stream")) {
      response.destroy();
      record.error = `not an OpenAI stream: content-type "${type}"`;
      return record;
    }
    let last = sent;
    let chunks = 0;
    let usageTokens: number | undefined;
    const parser = new SseParser();
    stream: for await (const piece of response) {
      for (const data of parser.push(piece as string)) {
        if (data === "[DONE]") break stream;
        const chunk = JSON.parse(data) as {
          choices?: unknown[];
          usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
          error?: { message?: string };
        };
        if (chunk.error)
          throw new Error(`error in stream: ${chunk.error.message ?? JSON.stringify(chunk.error)}`);
        const now = performance.now();
        if (chunk.choices && chunk.choices.length > 0) {
          if (chunks === 0) {
            record.ttft = (now - sent) / 1000;
            onFirstToken?.();
          } else record.itl.push((now - last) / 1000);
          last = now;
          chunks++;
        }
        if (chunk.usage) {
          usageTokens = chunk.usage.completion_tokens ?? usageTokens;
          if (chunk.usage.prompt_tokens !== undefined) record.promptTokens = chunk.usage.prompt_tokens;
        }
      }
    }
    if (chunks === 0) throw new Error("the stream carried no choices");
    record.e2e = (last - sent) / 1000;
    record.outputTokens = usageTokens ?? chunks;
    record.success = true;
  } catch (err) {
    record.error =
      err instanceof SyntaxError ? `not an OpenAI stream: ${err.message}` : (err as Error).message;
  }
  return record;
}

/** POSTs a JSON body; resolves with the response once its headers are in (a connection failure rejects). */
function post(url: string, body: string, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const send = url.startsWith("https:") ? httpsRequest : httpRequest;
    const request = send(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          ...headers,
        },
      },
      resolve,
    );
    request.on("error", reject);
    request.end(body);
  });
}

/** The `data:` payloads of a server-sent-events stream, one per event. */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for await (const bytes of body) yield* parser.push(decoder.decode(bytes, { stream: true }));
}

/** OpenAI's error body {"error": {"message"}} when there is one, else the start of the body. */
function errorMessage(body: string): string {
  try {
    const message = (JSON.parse(body) as { error?: { message?: string } }).error?.message;
    if (message) return message;
  } catch {}
  return JSON.stringify(body.slice(0, 120));
}

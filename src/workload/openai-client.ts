import { InputError } from "../model/errors.js";
import type { WorkloadPrompt } from "./dataset.js";
import type { RequestRecord } from "./metrics.js";

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
 * called at the first chunk carrying a choice.
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
    const response = await fetch(`${target.baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...authHeaders(target.apiKey) },
      body: JSON.stringify(requestBody(target, prompt)),
    });
    if (!response.ok) {
      record.error = `HTTP ${response.status}: ${errorMessage(await response.text())}`;
      return record;
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.startsWith("text/event-stream") || !response.body) {
      record.error = `not an OpenAI stream: content-type "${type}"`;
      return record;
    }
    let last = sent;
    let chunks = 0;
    let usageTokens: number | undefined;
    for await (const data of sseData(response.body)) {
      if (data === "[DONE]") break;
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

/** The `data:` payloads of a server-sent-events stream, one per event. */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const bytes of body) {
    buffer += decoder.decode(bytes, { stream: true }).replaceAll("\r\n", "\n");
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const data = buffer
        .slice(0, end)
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      buffer = buffer.slice(end + 2);
      if (data) yield data;
      end = buffer.indexOf("\n\n");
    }
  }
}

/** OpenAI's error body {"error": {"message"}} when there is one, else the start of the body. */
function errorMessage(body: string): string {
  try {
    const message = (JSON.parse(body) as { error?: { message?: string } }).error?.message;
    if (message) return message;
  } catch {}
  return JSON.stringify(body.slice(0, 120));
}

import { request } from "node:http";
import { sseData } from "../../workload/openai-client.js";
import type { WorkloadRandom } from "../../workload/random.js";

/** What one soak request got: its HTTP status, or "failed" when no answer came (refused, reset, timed out). */
export interface Outcome {
  kind: string;
  status: number | "failed";
  /** Why the answer is not what this kind of request must get; absent when it is. */
  unexpected?: string;
}

/** One kind of request in the mix: how often it is drawn and how it is sent and checked. */
interface RequestKind {
  name: string;
  weight: number;
  send(baseUrl: string, rnd: WorkloadRandom, signal: AbortSignal): Promise<Outcome>;
}

const prompts = [
  "In the beginning",
  "And God said",
  "The LORD is my shepherd",
  "Blessed are the meek",
  "And it came to pass",
  "Hear, O Israel",
];

/** Bodies that must get 400: bad JSON, a wrong type, a value out of range, no messages, a fan-out past the limits. */
const badBodies: { path: string; body: string }[] = [
  { path: "/v1/completions", body: '{"prompt": ' },
  { path: "/v1/completions", body: JSON.stringify({ prompt: "x", temperature: "hot" }) },
  { path: "/v1/completions", body: JSON.stringify({ prompt: "x", n: 0 }) },
  { path: "/v1/completions", body: JSON.stringify({ prompt: [1e9] }) },
  { path: "/v1/chat/completions", body: JSON.stringify({ messages: [] }) },
  { path: "/v1/completions", body: JSON.stringify({ prompt: Array(2000).fill("a"), n: 128 }) },
];

/** The parsed body, or undefined when it is not JSON (an unexpected answer, not a failed connection). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function pick<T>(rnd: WorkloadRandom, items: readonly T[]): T {
  return items[rnd.int(0, items.length - 1)];
}

function chatMessages(rnd: WorkloadRandom) {
  return [{ role: "user", content: pick(rnd, prompts) }];
}

async function post(baseUrl: string, path: string, body: unknown, signal: AbortSignal) {
  return fetch(`${baseUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

/** A JSON answer that must be 200 with `choices` choices. */
async function expectChoices(kind: string, response: Response, choices: number): Promise<Outcome> {
  const text = await response.text();
  if (response.status !== 200) return { kind, status: response.status, unexpected: text.slice(0, 200) };
  const got = (parseJson(text) as { choices?: unknown[] } | undefined)?.choices?.length;
  return got === choices
    ? { kind, status: 200 }
    : { kind, status: 200, unexpected: `${got} choices, expected ${choices}` };
}

/**
 * A stream that must be 200 and end with [DONE] after `choices` finish reasons and no error chunk. It is read
 * to its end, as a client that keeps its connection for the next request does.
 */
async function expectStream(kind: string, response: Response, choices: number): Promise<Outcome> {
  if (response.status !== 200 || !response.body) {
    return { kind, status: response.status, unexpected: (await response.text()).slice(0, 200) };
  }
  let finished = 0;
  let done = false;
  let problem: string | undefined;
  for await (const data of sseData(response.body)) {
    if (done) problem ??= `an event after [DONE]: ${data.slice(0, 200)}`;
    if (data === "[DONE]") {
      done = true;
      continue;
    }
    const chunk = parseJson(data) as
      | { choices?: { finish_reason: string | null }[]; error?: unknown }
      | undefined;
    if (!chunk) problem ??= `not JSON in stream: ${data.slice(0, 200)}`;
    else if (chunk.error) problem ??= `error in stream: ${data.slice(0, 200)}`;
    finished += chunk?.choices?.filter((c) => c.finish_reason !== null).length ?? 0;
  }
  if (!done) problem ??= "the stream ended without [DONE]";
  if (finished !== choices) problem ??= `${finished} finish reasons, expected ${choices}`;
  return { kind, status: 200, ...(problem === undefined ? {} : { unexpected: problem }) };
}

/**
 * A streamed completion whose client closes the connection after the first chunk, as a browser tab does
 * when it is closed; node:http, so that the socket really closes.
 */
function disconnectMidStream(baseUrl: string, signal: AbortSignal): Promise<Outcome> {
  const kind = "disconnect";
  const body = { prompt: "And", max_tokens: 200, ignore_eos: true, stream: true };
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      signal,
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        resolve({ kind, status, unexpected: "a stream was refused" });
        return;
      }
      res.once("data", () => {
        req.destroy();
        resolve({ kind, status });
      });
    });
    req.end(JSON.stringify(body));
  });
}

export const requestKinds: RequestKind[] = [
  {
    name: "completion",
    weight: 4,
    send: async (url, rnd, signal) => {
      const body = { prompt: pick(rnd, prompts), max_tokens: rnd.int(4, 48) };
      return expectChoices("completion", await post(url, "/v1/completions", body, signal), 1);
    },
  },
  {
    name: "completion-stream",
    weight: 4,
    send: async (url, rnd, signal) => {
      const body = { prompt: pick(rnd, prompts), max_tokens: rnd.int(4, 48), stream: true };
      return expectStream("completion-stream", await post(url, "/v1/completions", body, signal), 1);
    },
  },
  {
    name: "chat",
    weight: 3,
    send: async (url, rnd, signal) => {
      const body = { messages: chatMessages(rnd), max_tokens: rnd.int(4, 48) };
      return expectChoices("chat", await post(url, "/v1/chat/completions", body, signal), 1);
    },
  },
  {
    name: "chat-stream",
    weight: 3,
    send: async (url, rnd, signal) => {
      const body = { messages: chatMessages(rnd), max_tokens: rnd.int(4, 48), stream: true };
      return expectStream("chat-stream", await post(url, "/v1/chat/completions", body, signal), 1);
    },
  },
  {
    name: "completion-n",
    weight: 2,
    send: async (url, rnd, signal) => {
      const n = rnd.int(2, 4);
      const body = { prompt: [pick(rnd, prompts), pick(rnd, prompts)], n, max_tokens: rnd.int(4, 32) };
      return expectChoices("completion-n", await post(url, "/v1/completions", body, signal), 2 * n);
    },
  },
  {
    name: "chat-n-stream",
    weight: 1,
    send: async (url, rnd, signal) => {
      const n = rnd.int(2, 4);
      const body = { messages: chatMessages(rnd), n, max_tokens: rnd.int(4, 32), stream: true };
      return expectStream("chat-n-stream", await post(url, "/v1/chat/completions", body, signal), n);
    },
  },
  { name: "disconnect", weight: 2, send: (url, _rnd, signal) => disconnectMidStream(url, signal) },
  {
    name: "bad-body",
    weight: 2,
    send: async (url, rnd, signal) => {
      const bad = pick(rnd, badBodies);
      const response = await post(url, bad.path, bad.body, signal);
      const text = await response.text();
      const kind = "bad-body";
      if (response.status !== 400)
        return { kind, status: response.status, unexpected: bad.body.slice(0, 80) };
      const error = (parseJson(text) as { error?: { message?: unknown } } | undefined)?.error;
      return typeof error?.message === "string"
        ? { kind, status: 400 }
        : { kind, status: 400, unexpected: `not OpenAI's error shape: ${text.slice(0, 200)}` };
    },
  },
  {
    name: "tokenize",
    weight: 2,
    send: async (url, rnd, signal) => {
      const response = await post(url, "/tokenize", { prompt: pick(rnd, prompts) }, signal);
      const kind = "tokenize";
      const text = await response.text();
      if (response.status !== 200) return { kind, status: response.status, unexpected: text.slice(0, 200) };
      const answer = parseJson(text) as { count?: number; tokens?: number[] } | undefined;
      const count = answer?.count ?? 0;
      return count > 0 && count === answer?.tokens?.length
        ? { kind, status: 200 }
        : { kind, status: 200, unexpected: `not a tokenization: ${text.slice(0, 200)}` };
    },
  },
];

/** Draws a request kind by weight. */
export function drawKind(rnd: WorkloadRandom): RequestKind {
  const total = requestKinds.reduce((sum, k) => sum + k.weight, 0);
  let x = rnd.float() * total;
  for (const kind of requestKinds) {
    x -= kind.weight;
    if (x < 0) return kind;
  }
  return requestKinds[requestKinds.length - 1];
}

/** Greedy (temperature 0) completions of fixed prompts: a server whose state leaks between requests changes them. */
export async function greedyOutputs(baseUrl: string): Promise<string[]> {
  const texts: string[] = [];
  for (const prompt of prompts) {
    const response = await post(
      baseUrl,
      "/v1/completions",
      { prompt, max_tokens: 32, temperature: 0 },
      AbortSignal.timeout(60_000),
    );
    if (response.status !== 200) throw new Error(`greedy completion of "${prompt}": HTTP ${response.status}`);
    texts.push(((await response.json()) as { choices: { text: string }[] }).choices[0].text);
  }
  return texts;
}

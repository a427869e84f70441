/** A non-2xx answer, with the message of the server's OpenAI-shaped error body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** fetch, with `Authorization: Bearer <apiKey>` when a key is given; a non-2xx answer throws an HttpError. */
export async function apiFetch(path: string, apiKey: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (apiKey !== "") headers.set("authorization", `Bearer ${apiKey}`);
  const response = await fetch(path, { ...init, headers });
  if (!response.ok) {
    const body = await response.json().catch(() => undefined);
    const message =
      response.status === 401
        ? "this server needs an API key: enter it above"
        : (body?.error?.message ?? `${response.status} ${response.statusText}`);
    throw new HttpError(response.status, message);
  }
  return response;
}

/**
 * The `data:` payloads of a server-sent-events response, as they arrive. fetch, not EventSource: it can POST a
 * body (chat) and send the API key in a header (the engine stream).
 */
export async function* sseData(response: Response): AsyncGenerator<string> {
  if (response.body === null) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    const events = buffer.split("\n\n");
    buffer = events.pop() ?? "";
    for (const event of events) {
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (data !== "") yield data;
    }
  }
}

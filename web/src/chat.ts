import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { apiFetch, sseData } from "./api.js";

interface Turn {
  role: "user" | "assistant";
  content: string;
  /** TTFT, tokens and tokens/s of a finished reply. */
  stats?: string;
  error?: string;
}

interface Settings {
  system: string;
  temperature: number;
  maxTokens: number;
  /** Stop sequences, one per line. */
  stop: string;
}

/** The chat request, as any OpenAI client would send it. */
function chatRequest(model: string, settings: Settings, turns: Turn[]) {
  const stop = settings.stop.split("\n").filter((line) => line !== "");
  return {
    model,
    messages: [
      ...(settings.system.trim() === "" ? [] : [{ role: "system", content: settings.system }]),
      ...turns.map(({ role, content }) => ({ role, content })),
    ],
    stream: true,
    stream_options: { include_usage: true },
    temperature: settings.temperature,
    max_tokens: settings.maxTokens,
    ...(stop.length > 0 ? { stop } : {}),
  };
}

/** Times in ms from performance.now(): TTFT from sending, tokens/s over the tokens after the first. */
function replyStats(sent: number, firstToken: number | undefined, end: number, tokens: number): string {
  const parts = [`${tokens} tokens`];
  if (firstToken !== undefined) parts.unshift(`TTFT ${Math.round(firstToken - sent)} ms`);
  if (firstToken !== undefined && tokens > 1 && end > firstToken) {
    parts.push(`${((tokens - 1) / ((end - firstToken) / 1000)).toFixed(1)} tokens/s`);
  }
  return parts.join(" · ");
}

/** Streaming chat with the served model through /v1/chat/completions, with each reply's TTFT and tokens/s. */
export function ChatView({ apiKey, model }: { apiKey: string; model: string }) {
  const [turns, setTurns] = useState<Turn[]>([]);
  const [draft, setDraft] = useState("");
  const [settings, setSettings] = useState<Settings>({
    system: "",
    temperature: 0.8,
    maxTokens: 128,
    stop: "",
  });
  const [running, setRunning] = useState<AbortController>();
  const log = useRef<HTMLDivElement>(null);
  useEffect(() => {
    log.current?.scrollTo({ top: log.current.scrollHeight });
  }, [turns]);

  async function send() {
    const text = draft.trim();
    if (text === "" || running) return;
    const history: Turn[] = [...turns.filter((t) => t.error === undefined), { role: "user", content: text }];
    let reply: Turn = { role: "assistant", content: "" };
    const show = (turn: Turn) => {
      reply = turn;
      setTurns([...history, turn]);
    };
    show(reply);
    setDraft("");
    const controller = new AbortController();
    setRunning(controller);
    const sent = performance.now();
    let firstToken: number | undefined;
    let tokens = 0;
    try {
      const response = await apiFetch("/v1/chat/completions", apiKey, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(chatRequest(model, settings, history)),
        signal: controller.signal,
      });
      for await (const data of sseData(response)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta: string = chunk.choices?.[0]?.delta?.content ?? "";
        if (delta !== "") {
          firstToken ??= performance.now();
          show({ ...reply, content: reply.content + delta });
        }
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
      }
      show({ ...reply, stats: replyStats(sent, firstToken, performance.now(), tokens) });
    } catch (err) {
      show({ ...reply, error: controller.signal.aborted ? "stopped" : (err as Error).message });
    } finally {
      setRunning(undefined);
    }
  }

  const setting =
    <K extends keyof Settings>(key: K, parse: (value: string) => Settings[K]) =>
    (e: Event) =>
      setSettings({ ...settings, [key]: parse((e.target as HTMLInputElement).value) });

  return html`
    <div class="chat">
      <aside class="settings">
        <label>System prompt
          <textarea rows="4" value=${settings.system} onInput=${setting("system", String)}></textarea>
        </label>
        <label>Temperature
          <input type="number" min="0" max="2" step="0.1" value=${settings.temperature}
            onInput=${setting("temperature", Number)} />
        </label>
        <label>Max tokens
          <input type="number" min="1" step="1" value=${settings.maxTokens} onInput=${setting("maxTokens", Number)} />
        </label>
        <label>Stop sequences (one per line)
          <textarea rows="2" value=${settings.stop} onInput=${setting("stop", String)}></textarea>
        </label>
        <button type="button" onClick=${() => setTurns([])} disabled=${running !== undefined}>New chat</button>
      </aside>
      <section class="conversation">
        <div class="log" ref=${log}>
          ${turns.length === 0 && html`<p class="hint">Say something to ${model || "the model"}.</p>`}
          ${turns.map(
            (turn) => html`
              <div class="turn ${turn.role}" data-testid="turn-${turn.role}">
                <div class="content">${turn.content}</div>
                ${turn.stats && html`<div class="stats" data-testid="turn-stats">${turn.stats}</div>`}
                ${turn.error && html`<div class="error">${turn.error}</div>`}
              </div>
            `,
          )}
        </div>
        <form class="composer" onSubmit=${(e: Event) => {
          e.preventDefault();
          send();
        }}>
          <textarea rows="2" placeholder="Message (Enter sends, Shift+Enter starts a new line)" value=${draft}
            onInput=${(e: Event) => setDraft((e.target as HTMLTextAreaElement).value)}
            onKeyDown=${(e: KeyboardEvent) => {
              if (e.key === "Enter" && !e.shiftKey) {
                e.preventDefault();
                send();
              }
            }}></textarea>
          ${
            running
              ? html`<button type="button" onClick=${() => running.abort()}>Stop</button>`
              : html`<button type="submit">Send</button>`
          }
        </form>
      </section>
    </div>
  `;
}

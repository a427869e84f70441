import { randomBytes } from "node:crypto";
import type { ToolCallEvent } from "./tool-call.js";

/**
 * What the tool-call formats share: reading one call's JSON, naming it, and the events a parser returns.
 */

/** A new call id, as OpenAI spells them (`call_` and random characters). */
export function newToolCallId(): string {
  return `call_${randomBytes(12).toString("hex")}`;
}

/**
 * The function name and arguments (as compact JSON text) of a call written as a JSON object
 * `{"name": …, <argumentsKey>: {…}}`; undefined when `json` is not such an object. Missing arguments are `{}`.
 */
export function parseCallObject(
  json: string,
  argumentKeys: readonly string[],
): { name: string; arguments: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const call = value as Record<string, unknown>;
  if (typeof call.name !== "string" || call.name === "") return undefined;
  const key = argumentKeys.find((k) => k in call);
  const args = key === undefined ? {} : call[key];
  if (typeof args !== "object" || args === null || Array.isArray(args)) return undefined;
  return { name: call.name, arguments: JSON.stringify(args) };
}

/**
 * The end (exclusive) of the JSON object that starts at `text[start]` (a `{`), found by matching braces outside
 * strings; undefined while the object is incomplete. The text in between is not checked: parseCallObject does.
 */
export function jsonObjectEnd(text: string, start: number): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return undefined;
}

/** The length of the longest end of `text` that begins `marker` (text a parser must hold back). */
export function partialMarkerLength(text: string, marker: string): number {
  for (let n = Math.min(text.length, marker.length - 1); n > 0; n--) {
    if (marker.startsWith(text.slice(text.length - n))) return n;
  }
  return 0;
}

/**
 * A parser's output, with the whitespace that models put before, between and after calls left out, so a
 * reply of calls has no content: content's trailing whitespace is held back until more content follows, and
 * dropped where a call or (in a reply with calls) the end follows.
 */
export class ToolCallEvents {
  private heldWhitespace = "";
  private calls = 0;
  private out: ToolCallEvent[] = [];

  content(text: string): void {
    const t = this.heldWhitespace + text;
    const kept = t.trimEnd();
    this.heldWhitespace = t.slice(kept.length);
    if (kept !== "") this.out.push({ kind: "content", text: kept });
  }

  call(call: { name: string; arguments: string }): void {
    this.heldWhitespace = "";
    const index = this.calls++;
    this.out.push({ kind: "call", index, id: newToolCallId(), name: call.name });
    this.out.push({ kind: "arguments", index, text: call.arguments });
  }

  /** The text has ended: held whitespace is content unless the reply made calls. */
  end(): void {
    if (this.calls === 0 && this.heldWhitespace !== "")
      this.out.push({ kind: "content", text: this.heldWhitespace });
    this.heldWhitespace = "";
  }

  /** The events since the last take. */
  take(): ToolCallEvent[] {
    const events = this.out;
    this.out = [];
    return events;
  }
}

/**
 * Reads a list of calls at the start of `text`: JSON call objects with whitespace and `separators` between
 * them, each added to `events`. Stops where the text ends or holds an unfinished object (`done` false: more
 * text may continue the list), or at anything else (`done` true: `rest` is what follows the list).
 */
export function readCallList(
  text: string,
  separators: string,
  argumentKeys: readonly string[],
  events: ToolCallEvents,
): { rest: string; done: boolean } {
  let i = 0;
  for (;;) {
    while (i < text.length && (separators.includes(text[i]) || /\s/.test(text[i]))) i++;
    if (i === text.length) return { rest: "", done: false };
    if (text[i] !== "{") return { rest: text.slice(i), done: true };
    const end = jsonObjectEnd(text, i);
    if (end === undefined) return { rest: text.slice(i), done: false };
    const call = parseCallObject(text.slice(i, end), argumentKeys);
    if (!call) return { rest: text.slice(i), done: true };
    events.call(call);
    i = end;
  }
}

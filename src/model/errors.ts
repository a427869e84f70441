/**
 * A problem with a user's input file. The CLI prints `message` as one line and exits 1, so the message
 * must name the file and what is wrong with it (for GGUF also the byte offset or metadata key).
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

// A corrupt or hostile file can hold anything: megabytes of text, terminal escape sequences, bidi overrides that
// reorder what a reader sees. Whatever a message takes from a file goes through one of the three functions
// below, so it stays one short line of visible characters.

/** How much of a file's string a message shows (escapes included). */
const maxShownChars = 80;
/** How much of a parser's or template's error message (which may quote the file) a message shows. */
const maxShownMessageChars = 200;

/** Control (C0, DEL, C1), format (bidi overrides and marks, zero-width), line/paragraph separators, lone surrogates. */
const unsafeChar = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const quotedEscapes: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

/** `c` (one code point, or one lone surrogate) as it may appear in a message. */
function escapeChar(c: string, quoted: boolean): string {
  const named = quoted ? quotedEscapes[c] : undefined;
  if (named) return named;
  if (!unsafeChar.test(c)) return c;
  let out = "";
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`;
  return out;
}

/** `s` escaped and cut to at most `max` characters (plus "…" when cut); reads no more of `s` than it shows. */
function escapeBounded(s: string, max: number, quoted: boolean): { text: string; cut: boolean } {
  let text = "";
  for (const c of s) {
    const shown = escapeChar(c, quoted);
    if (text.length + shown.length > max) return { text: `${text}…`, cut: true };
    text += shown;
  }
  return { text, cut: false };
}

/**
 * A string from a file (a key, a tensor name, a metadata value), for a message: in double quotes with JSON's
 * escapes, every unsafe character as \uXXXX, and cut after 80 characters, saying how long it was:
 * `"blk.0\u001b[31m…" (5400000 characters)`.
 */
export function quoteFileString(s: string): string {
  const { text, cut } = escapeBounded(s, maxShownChars, true);
  return cut ? `"${text}" (${s.length} characters)` : `"${text}"`;
}

/** A JSON value from a file (config.json, a safetensors header), for a message: strings as quoteFileString, the rest as short JSON. */
export function showFileValue(v: unknown): string {
  if (typeof v === "string") return quoteFileString(v);
  return escapeBounded(JSON.stringify(v) ?? String(v), maxShownChars, false).text;
}

/** The message of an error that may quote a file (JSON.parse's, a tokenizer library's, a chat template's): one short line. */
export function fileErrorText(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const line = message
    .slice(0, 4 * maxShownMessageChars)
    .replace(/\s+/g, " ")
    .trim();
  return escapeBounded(line, maxShownMessageChars, false).text;
}

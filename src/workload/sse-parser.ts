/**
 * Server-sent events as text arrives in pieces: `push` returns the `data:` payload of each event the piece
 * completes (its data lines joined by "\n"; events without data give none). CRLF line ends are read as LF, also
 * when a piece ends between the CR and the LF.
 */
export class SseParser {
  private buffer = "";

  push(text: string): string[] {
    this.buffer += text;
    if (this.buffer.includes("\r")) {
      const pendingCr = this.buffer.endsWith("\r");
      this.buffer = this.buffer.replaceAll("\r\n", "\n");
      if (pendingCr) this.buffer = this.buffer.slice(0, -1);
      const events = this.events();
      if (pendingCr) this.buffer += "\r";
      return events;
    }
    return this.events();
  }

  private events(): string[] {
    const out: string[] = [];
    let start = 0;
    let end = this.buffer.indexOf("\n\n", start);
    while (end >= 0) {
      const data = eventData(this.buffer.slice(start, end));
      if (data) out.push(data);
      start = end + 2;
      end = this.buffer.indexOf("\n\n", start);
    }
    if (start > 0) this.buffer = this.buffer.slice(start);
    return out;
  }
}

/** The data lines of one event, each without "data:" and the spaces after it, joined by "\n". */
function eventData(event: string): string {
  if (event.startsWith("data:") && !event.includes("\n")) return event.slice(5).trimStart();
  return event
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).trimStart())
    .join("\n");
}

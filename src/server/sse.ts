import { PassThrough } from "node:stream";
import type { FastifyReply } from "fastify";

/**
 * A Server-Sent Events response as OpenAI streams it: `data: {json}\n\n` per chunk, `data: [DONE]\n\n` last
 * (chat and completions), or named events `event: type\ndata: {json}\n\n` and no marker (the Responses API).
 * The body is a stream handed to fastify, so its hooks (request log) run as for any reply; once the client
 * has gone, writes are dropped.
 */
export class SseWriter {
  private readonly body = new PassThrough();

  constructor(reply: FastifyReply) {
    reply
      .header("content-type", "text/event-stream; charset=utf-8")
      .header("cache-control", "no-cache")
      .header("x-accel-buffering", "no");
    reply.send(this.body);
  }

  /** The client has not read what was sent so far (the stream's buffer is full): a sampler skips a beat. */
  get backedUp(): boolean {
    return this.body.writableNeedDrain;
  }

  send(data: unknown): void {
    if (!this.body.destroyed) this.body.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** An event with its name on an `event:` line before its data. */
  sendEvent(name: string, data: unknown): void {
    if (!this.body.destroyed) this.body.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  done(): void {
    if (!this.body.destroyed) this.body.end("data: [DONE]\n\n");
  }

  /** Ends without the `[DONE]` marker (the Responses API has none). */
  end(): void {
    if (!this.body.destroyed) this.body.end();
  }
}

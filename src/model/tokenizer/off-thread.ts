import { extname } from "node:path";
import { setImmediate } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { InputError } from "../errors.js";
import type { EncodeJob, EncodeReply } from "./off-thread-worker.js";
import type { EncodeRequest, Tokenizer } from "./tokenizer.js";

/**
 * Below this many UTF-16 units of text in one call, encoding stays on the calling thread. Measured on a busy
 * 2-vCPU machine: encoding costs 1-2 µs a character (SentencePiece and byte-level BPE alike), so 4096 units
 * hold the event loop for about 7-9 ms; a round trip to the worker costs 1-2 ms (as much as encoding 1 KB)
 * and waits behind any large job the worker is busy with, so ordinary prompts are better off inline.
 */
export const defaultInlineBelow = 4096;

/**
 * The code of a worker thread (for `new Worker(code, { eval: true })`): it imports its entry, the module
 * `entryName` beside the module at `moduleUrl`, with that module's extension (.js in dist/, .ts when the
 * sources run, as in the tests). From sources it first registers tsx's loader (a devDependency), since Node
 * 20 does not apply --import to worker threads.
 */
export function workerBootstrap(moduleUrl: string, entryName: string): string {
  const extension = extname(fileURLToPath(moduleUrl));
  const entry = new URL(`./${entryName}${extension}`, moduleUrl).href;
  const load = `import(${JSON.stringify(entry)})`;
  if (extension !== ".ts") return load;
  return `import("tsx/esm/api").then((tsx) => { tsx.register(); return ${load}; })`;
}

interface Pending {
  resolve(ids: Int32Array[]): void;
  reject(err: Error): void;
}

/** A running worker thread and the jobs it has yet to answer. */
interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * Encodes text without blocking the event loop: a large call goes to a worker thread that builds the same
 * tokenizer from its recipe (so its ids are the same), a small one runs inline. The thread starts on the
 * first large call, holds the process open only while it has work, and a failure of the thread fails the
 * calls it had (the next call starts a new one).
 */
export class OffThreadTokenizer {
  private thread: Thread | undefined;
  private nextJobId = 0;

  constructor(
    readonly tokenizer: Tokenizer,
    private readonly inlineBelow = defaultInlineBelow,
  ) {}

  /** The ids of each request, in order; InputErrors of the tokenizer are thrown as InputErrors. */
  async encode(requests: readonly EncodeRequest[]): Promise<number[][]> {
    if (textLength(requests) < this.inlineBelow) {
      return requests.map(({ text, ...opts }) => this.tokenizer.encode(text, opts));
    }
    const results: number[][] = [];
    for (const ids of await this.post(requests)) results.push(await plainIds(ids));
    return results;
  }

  /** Ends the worker thread; calls it had not answered fail. */
  async close(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    await thread?.worker.terminate();
  }

  private post(requests: readonly EncodeRequest[]): Promise<Int32Array[]> {
    const thread = this.thread ?? this.start();
    const job: EncodeJob = { id: this.nextJobId++, requests };
    return new Promise((resolve, reject) => {
      thread.pending.set(job.id, { resolve, reject });
      thread.worker.ref();
      thread.worker.postMessage(job);
    });
  }

  private start(): Thread {
    const worker = new Worker(workerBootstrap(import.meta.url, "off-thread-worker"), {
      eval: true,
      workerData: this.tokenizer.recipe,
    });
    const thread: Thread = { worker, pending: new Map() };
    worker.unref();
    worker.on("message", (reply: EncodeReply) => {
      const pending = thread.pending.get(reply.id);
      thread.pending.delete(reply.id);
      if (thread.pending.size === 0) worker.unref();
      if ("ids" in reply) pending?.resolve(reply.ids);
      else {
        const { message, inputError } = reply.error;
        pending?.reject(inputError ? new InputError(message) : new Error(message));
      }
    });
    const fail = (err: Error) => {
      if (this.thread === thread) this.thread = undefined;
      for (const pending of thread.pending.values()) pending.reject(err);
      thread.pending.clear();
    };
    worker.on("error", (err) => fail(new Error(`the tokenizer thread failed: ${err.message}`)));
    worker.on("exit", (code) => fail(new Error(`the tokenizer thread stopped (exit code ${code})`)));
    this.thread = thread;
    return thread;
  }
}

/** Ids copied per turn of the event loop (Array.from of 280k ids held a busy machine's loop for 130 ms). */
const copyChunk = 1 << 16;

/** The worker's ids as a plain array, copied a chunk per turn of the event loop into one allocation. */
async function plainIds(ids: Int32Array): Promise<number[]> {
  const out = new Array<number>(ids.length);
  for (let start = 0; start < ids.length; start += copyChunk) {
    if (start > 0) await setImmediate();
    const end = Math.min(ids.length, start + copyChunk);
    for (let i = start; i < end; i++) out[i] = ids[i];
  }
  return out;
}

function textLength(requests: readonly EncodeRequest[]): number {
  let length = 0;
  for (const { text } of requests) {
    if (typeof text === "string") length += text.length;
    else for (const part of text) length += part.text.length;
  }
  return length;
}

import { Worker } from "node:worker_threads";
import type { GrammarMatcher, TokenGrammar } from "../../core/grammar.js";
import { InputError } from "../../model/errors.js";
import type { StructuredOutputSpec } from "../../model/structured-output-spec.js";
import { workerBootstrap } from "../../model/tokenizer/off-thread.js";
import type { Tokenizer } from "../../model/tokenizer/tokenizer.js";
import { type GrammarVocabulary, grammarVocabulary } from "./grammar-vocabulary.js";
import type { CompileReply, GrammarJob } from "./grammar-worker.js";
import { MaskReader, maskSlot } from "./mask-slot.js";

/** Compiled grammars kept (by spec), least recently used dropped first. */
const defaultCacheSize = 64;
/**
 * Longest wait for a mask in fillNextTokenBitmask when the caller did not await ready() first: a compile
 * ahead of it on the grammar thread takes about a second at a 128k vocabulary.
 */
const syncWaitMs = 60_000;

/** The grammar thread and what the engine has given it. */
interface Thread {
  worker: Worker;
  /** Compiles not yet answered, by job id. */
  pending: Map<number, { resolve(): void; reject(err: Error): void }>;
  /** The slots of live matchers: woken with an error if the thread stops. */
  live: Set<MaskReader>;
  alive: boolean;
}

/**
 * The engine's one door to structured outputs: compile(spec) turns a StructuredOutputSpec into a TokenGrammar
 * for the served model's vocabulary, with XGrammar on its own thread (grammar-worker.ts), started at the
 * first compile. Grammars are cached by spec; a bad spec rejects with an InputError saying what is wrong.
 */
export class StructuredOutputs {
  private thread: Thread | undefined;
  private vocabulary: GrammarVocabulary | undefined;
  private readonly cache = new Map<string, Promise<WorkerGrammar>>();
  private nextId = 0;

  constructor(
    private readonly tokenizer: Tokenizer,
    /** Rows of the logits (at least the tokenizer's vocabulary). */
    private readonly vocabSize: number,
    private readonly cacheSize = defaultCacheSize,
  ) {}

  compile(spec: StructuredOutputSpec): Promise<TokenGrammar> {
    const key = JSON.stringify(spec);
    let grammar = this.cache.get(key);
    if (grammar) {
      this.cache.delete(key);
    } else {
      grammar = this.start(spec);
      // A failed compile is not kept: a thread failure must not stick to the spec.
      grammar.catch(() => {
        if (this.cache.get(key) === grammar) this.cache.delete(key);
      });
    }
    this.cache.set(key, grammar);
    if (this.cache.size > this.cacheSize) {
      const [oldestKey, oldest] = this.cache.entries().next().value as [string, Promise<WorkerGrammar>];
      this.cache.delete(oldestKey);
      oldest.then((g) => g.drop()).catch(() => {});
    }
    return grammar;
  }

  /** Ends the grammar thread (at server shutdown); live matchers fail. */
  async close(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    this.cache.clear();
    await thread?.worker.terminate();
  }

  private async start(spec: StructuredOutputSpec): Promise<WorkerGrammar> {
    const thread = this.thread ?? this.startThread();
    const id = this.nextId++;
    await new Promise<void>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      holdOpen(thread);
      post(thread, { type: "compile", id, spec });
    });
    return new WorkerGrammar(thread, id, this.vocabulary as GrammarVocabulary);
  }

  private startThread(): Thread {
    this.vocabulary ??= grammarVocabulary(this.tokenizer, this.vocabSize);
    const worker = new Worker(workerBootstrap(import.meta.url, "grammar-worker"), {
      eval: true,
      workerData: this.vocabulary,
    });
    const thread: Thread = { worker, pending: new Map(), live: new Set(), alive: true };
    worker.unref();
    worker.on("message", (reply: CompileReply) => {
      const pending = thread.pending.get(reply.id);
      thread.pending.delete(reply.id);
      holdOpen(thread);
      if ("ok" in reply) pending?.resolve();
      else pending?.reject(reply.inputError ? new InputError(reply.error) : new Error(reply.error));
    });
    const fail = (err: Error) => {
      if (!thread.alive) return;
      thread.alive = false;
      if (this.thread === thread) {
        this.thread = undefined;
        this.cache.clear();
      }
      for (const pending of thread.pending.values()) pending.reject(err);
      thread.pending.clear();
      for (const reader of thread.live) reader.stop();
    };
    worker.on("error", (err) => fail(new Error(`the grammar thread failed: ${err.message}`)));
    worker.on("exit", (code) => fail(new Error(`the grammar thread stopped (exit code ${code})`)));
    this.thread = thread;
    return thread;
  }
}

/**
 * The thread keeps the process alive only while it has work: a compile to answer or a matcher whose masks
 * may be awaited (an Atomics wait does not hold the event loop open by itself).
 */
function holdOpen(thread: Thread): void {
  if (thread.pending.size > 0 || thread.live.size > 0) thread.worker.ref();
  else thread.worker.unref();
}

function post(thread: Thread, job: GrammarJob): void {
  if (thread.alive) thread.worker.postMessage(job);
}

let nextMatcherId = 0;

/** A grammar compiled on the grammar thread. */
class WorkerGrammar implements TokenGrammar {
  constructor(
    private readonly thread: Thread,
    private readonly grammarId: number,
    private readonly vocabulary: GrammarVocabulary,
  ) {}

  createMatcher(): GrammarMatcher {
    return new WorkerMatcher(this.thread, this.grammarId, nextMatcherId++, this.vocabulary);
  }

  /** Frees the compiled grammar on the thread; matchers made from it keep working. */
  drop(): void {
    post(this.thread, { type: "drop", grammarId: this.grammarId });
  }
}

/**
 * One request's place in its grammar, kept on the grammar thread. The thread publishes the next mask after
 * each accepted token; this side counts the masks it expects, and knows from the published mask whether a
 * token is accepted, and from the stop ids when the grammar has ended.
 */
class WorkerMatcher implements GrammarMatcher {
  private readonly reader: MaskReader;
  /** Masks published once the thread has handled every accept sent so far. */
  private expected = 1;
  private terminated = false;

  constructor(
    private readonly thread: Thread,
    grammarId: number,
    private readonly matcherId: number,
    private readonly vocabulary: GrammarVocabulary,
  ) {
    const slot = maskSlot(vocabulary.vocabSize);
    this.reader = new MaskReader(slot);
    thread.live.add(this.reader);
    holdOpen(thread);
    if (!thread.alive) this.reader.stop();
    post(thread, { type: "create", matcherId, grammarId, slot });
  }

  ready(): Promise<void> {
    return this.terminated ? Promise.resolve() : this.reader.ready(this.expected);
  }

  fillNextTokenBitmask(bitmask: Int32Array): boolean {
    if (this.terminated) {
      // Past the grammar's end only a stop token may follow (a request held open by min_tokens or
      // ignore_eos keeps asking).
      bitmask.fill(0);
      for (const id of this.vocabulary.stopIds) bitmask[id >> 5] |= 1 << (id & 31);
      return true;
    }
    this.reader.waitSync(this.expected, syncWaitMs);
    return this.reader.copyTo(bitmask);
  }

  acceptToken(tokenId: number): boolean {
    // Past the end (min_tokens, ignore_eos), stop tokens are all there is to accept.
    if (this.terminated) return this.vocabulary.stopIds.includes(tokenId);
    this.reader.waitSync(this.expected, syncWaitMs);
    if (!this.reader.allows(tokenId)) return false;
    post(this.thread, { type: "accept", matcherId: this.matcherId, tokenId });
    if (this.vocabulary.stopIds.includes(tokenId)) this.terminated = true;
    else this.expected++;
    return true;
  }

  isTerminated(): boolean {
    return this.terminated;
  }

  dispose(): void {
    this.thread.live.delete(this.reader);
    holdOpen(this.thread);
    post(this.thread, { type: "dispose", matcherId: this.matcherId });
  }
}

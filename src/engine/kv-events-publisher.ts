import { encode } from "@msgpack/msgpack";
import { Publisher, Router } from "zeromq";
import { z } from "zod";
import type { BlockHash } from "../core/block-hash.js";
import type { KvCacheEvent } from "../core/kv-events.js";
import { InputError } from "../model/errors.js";

/**
 * `--kv-events-config`, with vLLM's field names and defaults (vllm/config/kv_events.py). Unknown fields are
 * refused, not ignored. `hwm` is the PUB socket's send high-water mark; `max_queue_size` bounds the batches
 * waiting for the socket (beyond it a batch is dropped from the live stream, still kept for replay).
 */
const kvEventsConfigSchema = z
  .object({
    enable_kv_cache_events: z.boolean().default(false),
    publisher: z.enum(["null", "zmq"]).optional(),
    endpoint: z.string().min(1).default("tcp://*:5557"),
    replay_endpoint: z.string().min(1).nullable().default(null),
    buffer_steps: z.int().min(1).default(10_000),
    hwm: z.int().min(0).default(100_000),
    max_queue_size: z.int().min(1).default(100_000),
    topic: z.string().default(""),
  })
  .strict();

export type KvEventsConfig = z.infer<typeof kvEventsConfigSchema> & { publisher: "null" | "zmq" };

/** Parses `--kv-events-config '<json>'`; a bad value is an InputError naming the field. */
export function parseKvEventsConfig(json: string): KvEventsConfig {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new InputError(`--kv-events-config is not JSON: ${json.slice(0, 200)}`);
  }
  const parsed = kvEventsConfigSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(`--kv-events-config: ${issue.path.join(".") || "value"}: ${issue.message}`);
  }
  const config = parsed.data;
  // As vLLM: the publisher follows enable_kv_cache_events unless named.
  return { ...config, publisher: config.publisher ?? (config.enable_kv_cache_events ? "zmq" : "null") };
}

/**
 * vLLM's name for the medium of the primary KV cache, the one the scheduler allocates from ("GPU"; CPU and disk
 * are offload tiers). vellum's cache is that tier even where it lives in host memory, so routers count it as such.
 */
const mediumGpu = "GPU";

/**
 * A block hash as vLLM sends it by default (VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES): the digest's low 64 bits,
 * big-endian, as an unsigned integer. A value past 2^53 stays a bigint, which msgpack writes as uint64.
 */
export function externalBlockHash(hash: BlockHash): number | bigint {
  const value = BigInt(`0x${hash.slice(-16)}`);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/**
 * One event in vLLM's msgspec layout for KVCacheEvent (array_like, tag=True): the tag (class name) first, then
 * every field in declaration order, unset ones as nil (array_like encodes defaults too). vellum serves no LoRA
 * adapters, so lora_id and lora_name are nil.
 */
function eventArray(event: KvCacheEvent): unknown[] {
  switch (event.type) {
    case "BlockStored":
      return [
        "BlockStored",
        event.blockHashes.map(externalBlockHash),
        event.parentBlockHash === null ? null : externalBlockHash(event.parentBlockHash),
        event.tokenIds,
        event.blockSize,
        null,
        mediumGpu,
        null,
        event.extraKeys,
        event.group,
      ];
    case "BlockRemoved":
      return ["BlockRemoved", event.blockHashes.map(externalBlockHash), mediumGpu, event.group];
    case "AllBlocksCleared":
      return ["AllBlocksCleared"];
  }
}

/**
 * A KVEventBatch as vLLM's publisher encodes it (msgspec, array_like): [ts, events, data_parallel_rank]. The
 * timestamp is written as a float64 even when whole, as msgspec writes a Python float.
 */
export function encodeKvEventBatch(
  ts: number,
  events: readonly KvCacheEvent[],
  dataParallelRank = 0,
): Buffer {
  const head = Buffer.alloc(10);
  head[0] = 0x93; // fixarray of 3
  head[1] = 0xcb; // float64
  head.writeDoubleBE(ts, 2);
  const body = encode(events.map(eventArray), { useBigInt64: true });
  return Buffer.concat([head, body, encode(dataParallelRank)]);
}

/** The replay stream's end marker: sequence −1, an empty payload. */
const endOfReplay = Buffer.alloc(8, 0xff);

/** A batch's sequence number on the wire: 8 bytes, big-endian, unsigned. */
function sequenceBytes(seq: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(seq));
  return bytes;
}

/**
 * Publishes the engine's KV cache events on ZeroMQ as vLLM's ZmqEventPublisher does, so that vLLM's consumers
 * (llm-d's KV-cache indexer, vLLM's example subscriber) read them unchanged: one KVEventBatch per engine step
 * with events, sent on a PUB socket as three frames [topic, sequence, payload]; the last `buffer_steps` batches
 * are kept for a ROUTER replay socket, where a client sends [empty, start sequence] and gets back every kept
 * batch from there as [empty, sequence, payload], then [empty, −1, empty].
 */
export class KvEventsPublisher {
  private readonly pub = new Publisher({ linger: 0 });
  private readonly replay?: Router;
  private readonly topic: Buffer;
  private nextSeq = 0;
  private readonly kept: { seq: number; payload: Buffer }[] = [];
  /** Batches waiting for the PUB socket, which takes one send at a time. */
  private readonly queue: { seq: number; payload: Buffer }[] = [];
  private sending?: Promise<void>;
  private closed = false;
  /** Batches dropped from the live stream because max_queue_size were waiting. */
  private dropped = 0;

  private constructor(
    private readonly config: KvEventsConfig,
    /** Told of a batch the socket refused or a replay that failed: neither stops the engine. */
    private readonly warn: (message: string) => void,
  ) {
    this.topic = Buffer.from(config.topic, "utf8");
    this.pub.sendHighWaterMark = config.hwm;
    if (config.replay_endpoint !== null) this.replay = new Router({ linger: 0 });
  }

  /**
   * Binds (an endpoint with a wildcard, ipc:// or inproc://) or connects the PUB socket, as vLLM decides, binds
   * the replay socket, and publishes AllBlocksCleared: a subscriber that tracked an earlier run of this
   * endpoint starts again from an empty cache, as this process does.
   */
  static async open(
    config: KvEventsConfig,
    warn: (message: string) => void = () => {},
  ): Promise<KvEventsPublisher> {
    const publisher = new KvEventsPublisher(config, warn);
    const { endpoint } = config;
    try {
      if (/[*]|::|^ipc:\/\/|^inproc:\/\//.test(endpoint)) await publisher.pub.bind(endpoint);
      else publisher.pub.connect(endpoint);
      if (publisher.replay && config.replay_endpoint !== null)
        await publisher.replay.bind(config.replay_endpoint);
    } catch (err) {
      await publisher.close();
      throw new InputError(`--kv-events-config: cannot open ${endpoint}: ${(err as Error).message}`);
    }
    if (publisher.replay) void publisher.serveReplays(publisher.replay);
    publisher.publish([{ type: "AllBlocksCleared" }]);
    return publisher;
  }

  /** Where the PUB socket is bound or connected (a wildcard port resolved). */
  get endpoint(): string {
    return this.pub.lastEndpoint ?? this.config.endpoint;
  }

  /** Where the replay socket is bound, if there is one. */
  get replayEndpoint(): string | undefined {
    return this.replay?.lastEndpoint ?? undefined;
  }

  /** The sequence number the next batch will get: batches published so far. */
  get numPublished(): number {
    return this.nextSeq;
  }

  /** Sends one engine step's events as one batch, stamped with the wall clock in seconds (as vLLM's time.time()). */
  publish(events: readonly KvCacheEvent[]): void {
    if (this.closed || events.length === 0) return;
    const batch = { seq: this.nextSeq++, payload: encodeKvEventBatch(Date.now() / 1000, events) };
    this.kept.push(batch);
    if (this.kept.length > this.config.buffer_steps) this.kept.shift();
    if (this.queue.length >= this.config.max_queue_size) {
      if (this.dropped++ === 0)
        this.warn(
          `KV events: ${this.queue.length} batches wait for the socket (max_queue_size): newer ones are dropped from the live stream, replay still has them`,
        );
      return;
    }
    this.queue.push(batch);
    this.sending ??= this.sendQueued().finally(() => {
      this.sending = undefined;
    });
  }

  private async sendQueued(): Promise<void> {
    for (let batch = this.queue.shift(); batch && !this.closed; batch = this.queue.shift()) {
      try {
        await this.pub.send([this.topic, sequenceBytes(batch.seq), batch.payload]);
      } catch (err) {
        // A batch the socket refused is still kept for replay; the engine goes on either way.
        if (!this.closed) this.warn(`KV events: batch ${batch.seq} not sent: ${(err as Error).message}`);
      }
    }
  }

  private async serveReplays(router: Router): Promise<void> {
    try {
      for await (const frames of router) {
        // [client identity, empty delimiter, start sequence]; anything else is not a replay request.
        if (frames.length !== 3 || frames[2].length !== 8) {
          this.warn(`KV events replay: ignored a request of ${frames.length} frames`);
          continue;
        }
        const [client] = frames;
        const start = Number(frames[2].readBigUInt64BE());
        for (const { seq, payload } of this.kept.filter((b) => b.seq >= start)) {
          await router.send([client, "", sequenceBytes(seq), payload]);
        }
        await router.send([client, "", endOfReplay, ""]);
      }
    } catch (err) {
      if (!this.closed) this.warn(`KV events replay stopped: ${(err as Error).message}`);
    }
  }

  /** Sends what is queued (for at most `flushMs`), then closes the sockets. */
  async close(flushMs = 1000): Promise<void> {
    if (this.sending)
      await Promise.race([this.sending, new Promise((resolve) => setTimeout(resolve, flushMs))]);
    this.closed = true;
    this.pub.close();
    this.replay?.close();
  }
}

import { decode } from "@msgpack/msgpack";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Dealer, Subscriber } from "zeromq";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { type BlockHash, hashBlockTokens, NONE_HASH } from "../../src/core/block-hash.js";
import {
  encodeKvEventBatch,
  externalBlockHash,
  KvEventsPublisher,
  parseKvEventsConfig,
} from "../../src/engine/kv-events-publisher.js";
import { loadModel } from "../../src/model/load.js";
import { Rng } from "../../src/util/rng.js";
import { startServer, type TestServer } from "../server-helpers.js";

describe("vLLM's wire layout", () => {
  test("a batch is msgspec's array_like KVEventBatch: [float64 ts, [[tag, fields…]], rank], byte for byte", () => {
    const hash = `${"ab".repeat(24)}0000000000000005`;
    const bytes = encodeKvEventBatch(1.5, [{ type: "BlockRemoved", group: 0, blockHashes: [hash] }]);
    // Written out from the msgpack spec: fixarray(3), float64 1.5, fixarray(1) of fixarray(4): fixstr(12)
    // "BlockRemoved", fixarray(1) of 5, fixstr(3) "GPU", 0; then rank 0.
    const expected = Buffer.concat([
      Buffer.from([0x93, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x91, 0x94, 0xac]),
      Buffer.from("BlockRemoved"),
      Buffer.from([0x91, 0x05, 0xa3]),
      Buffer.from("GPU"),
      Buffer.from([0x00, 0x00]),
    ]);
    expect(bytes.toString("hex")).toBe(expected.toString("hex"));
  });

  test("a whole-second timestamp is still a float64; BlockStored carries every field in order, nil where unset", () => {
    const hashes = [`${"0".repeat(48)}ffffffffffffffff`, `${"1".repeat(48)}0000000000000007`];
    const bytes = encodeKvEventBatch(1_700_000_000, [
      {
        type: "BlockStored",
        group: 0,
        blockHashes: [hashes[1]],
        parentBlockHash: hashes[0],
        tokenIds: [1, 2, 300, 70_000],
        blockSize: 4,
        extraKeys: [null],
      },
      { type: "AllBlocksCleared" },
    ]);
    expect(bytes[1]).toBe(0xcb);
    expect(decode(bytes, { useBigInt64: true })).toEqual([
      1_700_000_000,
      [
        ["BlockStored", [7], 0xffffffffffffffffn, [1, 2, 300, 70_000], 4, null, "GPU", null, [null], 0],
        ["AllBlocksCleared"],
      ],
      0,
    ]);
  });

  test("--kv-events-config takes vLLM's fields and defaults, and refuses what it does not know", () => {
    expect(parseKvEventsConfig('{"enable_kv_cache_events": true}')).toEqual({
      enable_kv_cache_events: true,
      publisher: "zmq",
      endpoint: "tcp://*:5557",
      replay_endpoint: null,
      buffer_steps: 10_000,
      hwm: 100_000,
      max_queue_size: 100_000,
      topic: "",
    });
    expect(parseKvEventsConfig("{}").publisher).toBe("null");
    expect(() => parseKvEventsConfig('{"enable_kv_cache_events": true, "bogus": 1}')).toThrow(/bogus/);
    expect(() => parseKvEventsConfig('{"publisher": "kafka"}')).toThrow(/publisher/);
    expect(() => parseKvEventsConfig("{not json")).toThrow(/not JSON/);
  });
});

type Frames = { topic: string; seq: number; payload: Buffer };

describe("a ZeroMQ subscriber rebuilds the prefix cache from the events", () => {
  const model = loadModel(bundledModelPath);
  const topic = "kv@pod-a@demo";
  let publisher: KvEventsPublisher;
  let s: TestServer;
  const live: Frames[] = [];
  const sub = new Subscriber();
  beforeAll(async () => {
    const config = parseKvEventsConfig(
      JSON.stringify({
        enable_kv_cache_events: true,
        endpoint: "tcp://127.0.0.1:*",
        replay_endpoint: "tcp://127.0.0.1:*",
        topic,
      }),
    );
    publisher = await KvEventsPublisher.open(config);
    sub.connect(publisher.endpoint);
    sub.subscribe("kv@");
    void (async () => {
      for await (const [t, seq, payload] of sub) {
        live.push({ topic: t.toString(), seq: Number(seq.readBigUInt64BE()), payload });
      }
    })().catch(() => {});
    // 24 blocks of 16 tokens hold about four of the requests below: later ones evict earlier ones' blocks.
    s = await startServer(model, { numBlocks: 24, onKvEvents: (events) => publisher.publish(events) });
  });
  afterAll(async () => {
    await s.close(1000);
    sub.close();
    await publisher.close();
  });

  /** Every batch published so far, from the replay socket: [empty, seq, payload] … then seq −1. */
  async function replay(from: number): Promise<Frames[]> {
    const dealer = new Dealer();
    dealer.connect(publisher.replayEndpoint as string);
    const start = Buffer.alloc(8);
    start.writeBigUInt64BE(BigInt(from));
    await dealer.send(["", start]);
    const batches: Frames[] = [];
    for (;;) {
      const [, seq, payload] = await dealer.receive();
      if (seq.readBigInt64BE() === -1n) break;
      batches.push({ topic, seq: Number(seq.readBigUInt64BE()), payload });
    }
    dealer.close();
    return batches;
  }

  test("after a workload with shared prefixes and evictions, the rebuilt set is the BlockPool's cached set", async () => {
    const rng = new Rng(22);
    const token = () => 10 + Math.floor(rng.nextFloat() * (model.config.vocabSize - 10));
    const tokens = (n: number) => Array.from({ length: n }, token);
    // 6 system prompts of 3 blocks, each followed by 4 user turns of 20 tokens (shared prefixes).
    const prompts = Array.from({ length: 6 }, () => tokens(48)).flatMap((system) =>
      Array.from({ length: 4 }, () => [...system, ...tokens(20)]),
    );
    for (let i = 0; i < prompts.length; i += 3) {
      await Promise.all(
        prompts
          .slice(i, i + 3)
          .map((prompt) =>
            s.client.completions.create({ model: model.name, prompt, max_tokens: 16, temperature: 0 }),
          ),
      );
    }
    await s.engine.idle();
    const pool = s.engine.core.kvCacheManager.blockPool;
    expect(pool.numEvictions).toBeGreaterThan(20);

    const batches = await replay(0);
    expect(batches.map((b) => b.seq)).toEqual(Array.from({ length: publisher.numPublished }, (_, i) => i));
    // The live stream says the same as the replay, under the topic and in order.
    expect(live.length).toBeGreaterThan(10);
    for (const b of live) {
      expect(b.topic).toBe(topic);
      expect(b.payload.equals(batches[b.seq].payload)).toBe(true);
    }
    expect(live.map((b) => b.seq)).toEqual([...live.map((b) => b.seq)].sort((a, b) => a - b));

    // Applied in order, as a router's indexer applies them. Each stored run's hashes are recomputed from its
    // tokens and its parent (as llm-d recomputes its own keys), which checks token_ids and parent_block_hash.
    const cached = new Set<string>();
    const fullHash = new Map<bigint, BlockHash>();
    let stored = 0;
    let removed = 0;
    for (const { payload } of batches) {
      const [ts, events, rank] = decode(payload, { useBigInt64: true }) as [number, unknown[][], number];
      expect(ts).toBeGreaterThan(1.6e9);
      expect(rank).toBe(0);
      for (const [tag, ...fields] of events) {
        const key = (group: unknown, hash: unknown) => `${group}:${BigInt(hash as number | bigint)}`;
        if (tag === "AllBlocksCleared") cached.clear();
        else if (tag === "BlockRemoved") {
          const [hashes, medium, group] = fields as [unknown[], string, number];
          expect(medium).toBe("GPU");
          for (const h of hashes) expect(cached.delete(key(group, h))).toBe(true);
          removed += hashes.length;
        } else {
          expect(tag).toBe("BlockStored");
          const [hashes, parent, ids, blockSize, loraId, medium, loraName, extraKeys, group] = fields as [
            unknown[],
            unknown,
            number[],
            number,
            null,
            string,
            null,
            unknown[],
            number,
          ];
          expect([blockSize, loraId, medium, loraName]).toEqual([16, null, "GPU", null]);
          expect(ids).toHaveLength(hashes.length * 16);
          expect(extraKeys).toEqual(hashes.map(() => null));
          let chain =
            parent === null ? NONE_HASH : (fullHash.get(BigInt(parent as number | bigint)) as BlockHash);
          expect(chain).toBeDefined();
          hashes.forEach((h, i) => {
            chain = hashBlockTokens(chain, ids.slice(i * 16, (i + 1) * 16));
            expect(BigInt(externalBlockHash(chain))).toBe(BigInt(h as number | bigint));
            fullHash.set(BigInt(h as number | bigint), chain);
            expect(cached.has(key(group, h))).toBe(false);
            cached.add(key(group, h));
          });
          stored += hashes.length;
        }
      }
    }
    expect(removed).toBe(pool.numEvictions);
    const poolSet = new Set<string>();
    for (let id = 1; id < pool.numBlocks; id++) {
      const hash = pool.blockHash(id);
      if (hash !== undefined) poolSet.add(`0:${BigInt(externalBlockHash(hash))}`);
    }
    expect(poolSet.size).toBeGreaterThan(5);
    expect(cached).toEqual(poolSet);
    expect(stored - removed).toBe(poolSet.size);
  });
});

import { type BlockHash, hashBlockTokens, NONE_HASH } from "../core/block-hash.js";
import type { WorkloadRandom } from "../workload/random.js";

/** One replica's metrics as of the last scrape. */
export interface ReplicaMetrics {
  /** Requests waiting to be scheduled (num_requests_waiting). */
  waiting: number;
  /** Fraction of KV cache blocks in use (kv_cache_usage_perc), 0 … 1. */
  kvUsage: number;
}

/** What the endpoint picker knows: each replica's scraped metrics, and who holds which block by the KV events so far. */
export interface FleetView {
  replicas: readonly ReplicaMetrics[];
  blocks: { holdersOf(hash: BlockHash): ReadonlyMap<number, number> | undefined };
}

/** Picks the replica for a request from its prompt and the fleet's view. */
export interface Router {
  choose(promptTokenIds: readonly number[], view: FleetView): number;
}

export type RouterName = "round-robin" | "least-queue" | "kv-usage" | "prefix-aware";
export const routerNames: RouterName[] = ["round-robin", "least-queue", "kv-usage", "prefix-aware"];

type Scorer = (promptTokenIds: readonly number[], view: FleetView) => number[];

/**
 * The Gateway API Inference Extension's queue scorer: waiting requests min-max normalized over the replicas,
 * 1 for the shortest queue, 0 for the longest, 1 for all when all are equal.
 */
const queueScores: Scorer = (_, { replicas }) => {
  const queues = replicas.map((r) => r.waiting);
  const min = Math.min(...queues);
  const max = Math.max(...queues);
  return queues.map((q) => (max === min ? 1 : (max - q) / (max - min)));
};

/** The Inference Extension's kv-cache-utilization scorer: the free fraction of the KV cache. */
const kvScores: Scorer = (_, { replicas }) => replicas.map((r) => 1 - r.kvUsage);

/**
 * The Inference Extension's prefix-cache scorer: the leading run of the prompt's blocks that the replica holds,
 * as a fraction of the prompt's full blocks (0 for a prompt shorter than a block). What it holds comes from its
 * KV events, as in llm-d's precise prefix-cache scorer, not from the router's own guesses.
 */
function prefixScores(blockSize: number): Scorer {
  return (tokens, { replicas, blocks }) => {
    const numBlocks = Math.floor(tokens.length / blockSize);
    const matched = new Array<number>(replicas.length).fill(0);
    // The hash chain the engine builds (block-hash.ts, no cache salt), hashed only while some replica still matches.
    let parent = NONE_HASH;
    let matching = replicas.map((_, i) => i);
    for (let b = 0; b < numBlocks && matching.length > 0; b++) {
      parent = hashBlockTokens(parent, tokens.slice(b * blockSize, (b + 1) * blockSize));
      const holders = blocks.holdersOf(parent);
      matching = holders ? matching.filter((i) => holders.has(i)) : [];
      for (const i of matching) matched[i]++;
    }
    return matched.map((n) => (numBlocks === 0 ? 0 : n / numBlocks));
  };
}

/**
 * A scheduling profile: the weighted sum of its scorers, then the Inference Extension's max-score picker, which
 * breaks ties uniformly at random.
 */
function weighted(scorers: [Scorer, number][], random: WorkloadRandom): Router {
  return {
    choose(tokens, view) {
      const total = new Array<number>(view.replicas.length).fill(0);
      for (const [scorer, weight] of scorers) {
        const scores = scorer(tokens, view);
        for (let i = 0; i < total.length; i++) total[i] += weight * scores[i];
      }
      const best = Math.max(...total);
      const tied = total.flatMap((s, i) => (s === best ? [i] : []));
      return tied[random.int(0, tied.length - 1)];
    },
  };
}

/**
 * round-robin: replicas in turn, blind to their state (a plain Kubernetes Service).
 * least-queue: the Inference Extension's queue scorer alone.
 * kv-usage: its kv-cache-utilization scorer alone.
 * prefix-aware: its default profile, prefix-cache 3 + queue 1 + kv-cache 1.
 * `random` breaks ties; blockSize is the replicas' KV block size, which their KV events' hashes are over.
 */
export function makeRouter(name: RouterName, random: WorkloadRandom, blockSize: number): Router {
  switch (name) {
    case "round-robin": {
      let next = 0;
      return { choose: (_, view) => next++ % view.replicas.length };
    }
    case "least-queue":
      return weighted([[queueScores, 1]], random);
    case "kv-usage":
      return weighted([[kvScores, 1]], random);
    case "prefix-aware":
      return weighted(
        [
          [prefixScores(blockSize), 3],
          [queueScores, 1],
          [kvScores, 1],
        ],
        random,
      );
  }
}

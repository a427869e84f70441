import type { BlockHash } from "../core/block-hash.js";
import type { WorkloadRandom } from "../workload/random.js";

/**
 * What the endpoint picker knows about one replica: the metrics of its last scrape and the blocks that the KV
 * events delivered so far say it holds.
 */
export interface ReplicaView {
  /** Requests waiting to be scheduled (num_requests_waiting). */
  waiting: number;
  /** Fraction of KV cache blocks in use (kv_cache_usage_perc), 0 … 1. */
  kvUsage: number;
  blocks: { has(hash: BlockHash): boolean };
}

/** Picks the replica for a request from its prompt's full-block hashes (block-hash.ts) and the replicas' views. */
export interface Router {
  choose(promptBlockHashes: readonly BlockHash[], replicas: readonly ReplicaView[]): number;
}

export type RouterName = "round-robin" | "least-queue" | "kv-usage" | "prefix-aware";
export const routerNames: RouterName[] = ["round-robin", "least-queue", "kv-usage", "prefix-aware"];

type Scorer = (promptBlockHashes: readonly BlockHash[], replicas: readonly ReplicaView[]) => number[];

/**
 * The Gateway API Inference Extension's queue scorer: waiting requests min-max normalized over the replicas,
 * 1 for the shortest queue, 0 for the longest, 1 for all when all are equal.
 */
const queueScores: Scorer = (_, replicas) => {
  const queues = replicas.map((r) => r.waiting);
  const min = Math.min(...queues);
  const max = Math.max(...queues);
  return queues.map((q) => (max === min ? 1 : (max - q) / (max - min)));
};

/** The Inference Extension's kv-cache-utilization scorer: the free fraction of the KV cache. */
const kvScores: Scorer = (_, replicas) => replicas.map((r) => 1 - r.kvUsage);

/**
 * The Inference Extension's prefix-cache scorer: the leading run of the prompt's blocks that the replica holds,
 * as a fraction of the prompt's full blocks (0 for a prompt shorter than a block). What it holds comes from its
 * KV events, as in llm-d's precise prefix-cache scorer, not from the router's own guesses.
 */
const prefixScores: Scorer = (hashes, replicas) =>
  replicas.map((r) => {
    let n = 0;
    while (n < hashes.length && r.blocks.has(hashes[n])) n++;
    return hashes.length === 0 ? 0 : n / hashes.length;
  });

/**
 * A scheduling profile: the weighted sum of its scorers, then the Inference Extension's max-score picker, which
 * breaks ties uniformly at random.
 */
function weighted(scorers: [Scorer, number][], random: WorkloadRandom): Router {
  return {
    choose(hashes, replicas) {
      const total = new Array<number>(replicas.length).fill(0);
      for (const [scorer, weight] of scorers) {
        const scores = scorer(hashes, replicas);
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
 * `random` breaks ties.
 */
export function makeRouter(name: RouterName, random: WorkloadRandom): Router {
  switch (name) {
    case "round-robin": {
      let next = 0;
      return { choose: (_, replicas) => next++ % replicas.length };
    }
    case "least-queue":
      return weighted([[queueScores, 1]], random);
    case "kv-usage":
      return weighted([[kvScores, 1]], random);
    case "prefix-aware":
      return weighted(
        [
          [prefixScores, 3],
          [queueScores, 1],
          [kvScores, 1],
        ],
        random,
      );
  }
}

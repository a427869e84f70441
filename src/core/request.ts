import type { BlockHash } from "./block-hash.js";
import type { ValidSamplingParams } from "./sampling-params.js";

/**
 * WAITING → RUNNING ↔ PREEMPTED → FINISHED_*. A preempted request lost its KV blocks and will be
 * recomputed from its prompt and the outputs it already has.
 */
export type RequestStatus =
  | "WAITING"
  | "RUNNING"
  | "PREEMPTED"
  | "FINISHED_STOPPED"
  | "FINISHED_LENGTH"
  | "FINISHED_ABORTED";

export function isFinished(status: RequestStatus): boolean {
  return status.startsWith("FINISHED_");
}

/** Times in seconds from the engine's injected clock; undefined until the event happens. */
export interface RequestTimestamps {
  arrival: number;
  firstScheduled?: number;
  firstToken?: number;
  /** One entry per generated token. */
  tokens: number[];
  finished?: number;
}

export interface NewRequest {
  id: string;
  promptTokenIds: readonly number[];
  samplingParams: ValidSamplingParams;
  arrivalTime: number;
  /** Lower runs first (vLLM's convention). */
  priority?: number;
  /** Isolates one tenant's prefix cache from another's: it is hashed into the first block. */
  cacheSalt?: string;
  /** The model's end-of-generation ids (EOS, EOT); honoured unless the params say ignoreEos. */
  eosTokenIds?: readonly number[];
}

/** One generation request as the scheduler and the KV cache manager see it: tokens, progress, status. */
export class Request {
  readonly id: string;
  readonly promptTokenIds: readonly number[];
  readonly outputTokenIds: number[] = [];
  /** Prompt then output, kept as one array so the KV cache can read any block without concatenating. */
  readonly allTokenIds: number[];
  readonly samplingParams: ValidSamplingParams;
  readonly priority: number;
  readonly cacheSalt: string | undefined;
  readonly eosTokenIds: readonly number[];
  readonly timestamps: RequestTimestamps;
  status: RequestStatus = "WAITING";
  /** Tokens whose K/V are in the cache (or scheduled to be written this step). */
  numComputedTokens = 0;
  numPreemptions = 0;
  /** Prompt tokens found in the prefix cache at first admission. */
  numCachedTokens = 0;
  /** Hashes of the full blocks of `allTokenIds`, extended by the KV cache manager as blocks fill. */
  readonly blockHashes: BlockHash[] = [];

  constructor(r: NewRequest) {
    this.id = r.id;
    this.promptTokenIds = r.promptTokenIds;
    this.allTokenIds = [...r.promptTokenIds];
    this.samplingParams = r.samplingParams;
    this.priority = r.priority ?? 0;
    this.cacheSalt = r.cacheSalt;
    this.eosTokenIds = r.eosTokenIds ?? [];
    this.timestamps = { arrival: r.arrivalTime, tokens: [] };
  }

  get numTokens(): number {
    return this.allTokenIds.length;
  }

  appendOutputTokenIds(tokenIds: readonly number[]): void {
    for (const t of tokenIds) {
      this.outputTokenIds.push(t);
      this.allTokenIds.push(t);
    }
  }
}

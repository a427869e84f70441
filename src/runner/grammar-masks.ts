import type { GrammarMatcher } from "../core/grammar.js";
import type { ScheduledRequest } from "../core/scheduler-output.js";

/** A constrained request's matcher and the mask buffer it fills each step (allocated once per request). */
interface Constrained {
  matcher: GrammarMatcher;
  bitmask: Int32Array;
}

/**
 * The grammar side of the runner: one matcher per constrained request, from its first sample until it
 * finishes (kept across preemption, since the outputs it has accepted are kept).
 */
export class GrammarMasks {
  private readonly constrained = new Map<string, Constrained>();

  constructor(private readonly vocabSize: number) {}

  /**
   * The next-token mask of every request of `scheduled` that samples this step under a grammar: set bit =
   * allowed; absent when the grammar allows every token. Awaits the matchers (their masks are computed on
   * another thread), so the caller runs it while the forward pass runs.
   */
  async fill(scheduled: readonly ScheduledRequest[]): Promise<Map<string, Int32Array>> {
    const sampling: Constrained[] = [];
    const ids: string[] = [];
    for (const { request, samples } of scheduled) {
      const grammar = request.samplingParams.grammar;
      if (!samples || !grammar) continue;
      let entry = this.constrained.get(request.id);
      if (!entry) {
        entry = { matcher: grammar.createMatcher(), bitmask: new Int32Array(Math.ceil(this.vocabSize / 32)) };
        this.constrained.set(request.id, entry);
      }
      sampling.push(entry);
      ids.push(request.id);
    }
    const masks = new Map<string, Int32Array>();
    if (sampling.length === 0) return masks;
    await Promise.all(sampling.map((c) => c.matcher.ready()));
    sampling.forEach(({ matcher, bitmask }, i) => {
      if (matcher.fillNextTokenBitmask(bitmask)) masks.set(ids[i], bitmask);
    });
    return masks;
  }

  /** Advances a constrained request's matcher past its sampled token. */
  accept(requestId: string, tokenId: number): void {
    const entry = this.constrained.get(requestId);
    if (entry && !entry.matcher.acceptToken(tokenId)) {
      throw new Error(`request ${requestId}: the grammar refused sampled token ${tokenId}`);
    }
  }

  /** Frees the matcher of a finished request. */
  release(requestId: string): void {
    this.constrained.get(requestId)?.matcher.dispose();
    this.constrained.delete(requestId);
  }
}

/** Sets every logit the mask refuses (bit clear) to -Infinity. */
export function applyTokenMask(row: Float32Array, mask: Int32Array): void {
  for (let w = 0; w < mask.length; w++) {
    const word = mask[w];
    if (word === -1) continue;
    const base = w << 5;
    const end = Math.min(32, row.length - base);
    for (let b = 0; b < end; b++) if (((word >>> b) & 1) === 0) row[base + b] = Number.NEGATIVE_INFINITY;
  }
}

/** Whether the mask allows no token outside `ids`. */
export function allowsOnly(mask: Int32Array, ids: readonly number[]): boolean {
  const others = mask.slice();
  for (const id of ids) others[id >> 5] &= ~(1 << (id & 31));
  return others.every((w) => w === 0);
}

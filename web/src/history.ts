import type { EngineSnapshot } from "../../src/engine/engine-snapshot.js";

/** Seconds of history the charts show. */
export const windowSeconds = 60;
/** Throughput is averaged over the steps of this many seconds. */
export const rateSeconds = 2;

/** Columns of one chart: x (engine seconds) first, then one array per series. */
export type Columns = number[][];

/**
 * The last windowSeconds of what the snapshots told: each step's composition, a rolling throughput sampled at each
 * snapshot, and each finished completion's TTFT and TPOT, as the columns uPlot draws.
 */
export class EngineHistory {
  /** Engine time of the latest snapshot. */
  now = 0;
  /** time, prefill tokens, prefill + decode tokens. */
  readonly steps: Columns = [[], [], []];
  /** time, prefill tokens/s, decode tokens/s. */
  readonly throughput: Columns = [[], [], []];
  /** time, TTFT ms (null for a completion aborted before its first token), TPOT ms (null below two tokens). */
  readonly latency: (number | null)[][] = [[], [], []];
  private nextStep = 0;
  private nextFinished = 0;

  add(s: EngineSnapshot): void {
    // A server that restarted numbers its steps from 0 again.
    if (s.steps.next < this.nextStep || s.time < this.now) this.clear();
    this.now = s.time;
    s.steps.rows.forEach(([time, prefill, decode], i) => {
      if (s.steps.first + i < this.nextStep) return;
      push(this.steps, time, prefill, prefill + decode);
    });
    this.nextStep = s.steps.next;
    s.finished.rows.forEach(([time, ttft, tpot, tokens], i) => {
      if (s.finished.first + i < this.nextFinished) return;
      push(this.latency, time, tokens > 0 ? ttft * 1000 : null, tokens > 1 ? tpot * 1000 : null);
    });
    this.nextFinished = s.finished.next;
    const [times, prefill, total] = this.steps;
    let prefillTokens = 0;
    let allTokens = 0;
    for (let i = times.length - 1; i >= 0 && times[i] > s.time - rateSeconds; i--) {
      prefillTokens += prefill[i];
      allTokens += total[i];
    }
    push(this.throughput, s.time, prefillTokens / rateSeconds, (allTokens - prefillTokens) / rateSeconds);
    for (const columns of [this.steps, this.throughput, this.latency]) trim(columns, s.time - windowSeconds);
  }

  private clear(): void {
    for (const columns of [this.steps, this.throughput, this.latency])
      trim(columns, Number.POSITIVE_INFINITY);
    this.nextStep = 0;
    this.nextFinished = 0;
  }
}

function push<T>(columns: T[][], ...row: T[]): void {
  for (const [i, value] of row.entries()) columns[i].push(value);
}

/** Drops the rows before `from` (the x column is sorted). */
function trim(columns: unknown[][], from: number): void {
  const x = columns[0] as number[];
  let n = 0;
  while (n < x.length && x[n] < from) n++;
  if (n > 0) for (const column of columns) column.splice(0, n);
}

import type { WorkloadRandom } from "./random.js";

/**
 * Send times (seconds from the start) of n requests, as vLLM's `bench serve` draws them: gaps from
 * Gamma(shape = burstiness, scale = 1 / (rate × burstiness)) — burstiness 1 is a Poisson process, below 1
 * burstier, above 1 more even — then rescaled so that the last request goes out at exactly n / rate.
 * rate = Infinity sends everything at 0.
 */
export function arrivalTimes(n: number, rate: number, burstiness: number, random: WorkloadRandom): number[] {
  if (!Number.isFinite(rate)) return new Array<number>(n).fill(0);
  const times: number[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += random.gamma(burstiness, 1 / (rate * burstiness));
    times.push(t);
  }
  const scale = n / rate / t;
  return times.map((x) => x * scale);
}

/**
 * The fallback measurement of this machine for the `cpu-local` profile when the native addon is not built,
 * in plain JavaScript on one thread: read bandwidth (summing a Float64Array far larger than the caches)
 * and scalar multiply-add rate (a loop over an array that stays in L1). The addon's probe measures SIMD
 * and multi-threaded peaks, which are higher; these figures match what JS-side kernels can reach.
 */

export interface CpuMeasurement {
  bandwidthBytesPerS: number;
  flopsPerS: number;
}

const bandwidthArrayBytes = 256 * 2 ** 20;
const repeats = 3;

/** Best of a few passes of `fn`, which returns the work it did (bytes or FLOPs): work per second. */
function bestRate(fn: () => number): number {
  let best = 0;
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    const work = fn();
    const seconds = (performance.now() - started) / 1000;
    best = Math.max(best, work / seconds);
  }
  return best;
}

export function measureCpu(): CpuMeasurement {
  const big = new Float64Array(bandwidthArrayBytes / 8).fill(1);
  let sink = 0;
  const bandwidthBytesPerS = bestRate(() => {
    // Four accumulators so the loop is bound by loads, not by one add chain.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < big.length; i += 4) {
      s0 += big[i];
      s1 += big[i + 1];
      s2 += big[i + 2];
      s3 += big[i + 3];
    }
    sink += s0 + s1 + s2 + s3;
    return big.byteLength;
  });

  const small = new Float64Array(1024).fill(0.5);
  const passes = 20_000;
  const flopsPerS = bestRate(() => {
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let p = 0; p < passes; p++) {
      for (let i = 0; i < small.length; i += 4) {
        a0 += small[i] * 0.999;
        a1 += small[i + 1] * 0.999;
        a2 += small[i + 2] * 0.999;
        a3 += small[i + 3] * 0.999;
      }
    }
    sink += a0 + a1 + a2 + a3;
    return 2 * passes * small.length;
  });
  if (sink === Number.NEGATIVE_INFINITY) console.log(sink); // keeps the sums observable to the JIT
  return { bandwidthBytesPerS, flopsPerS };
}

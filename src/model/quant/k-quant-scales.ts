/**
 * The scale searches of ggml's K-quant reference quantizers (ggml-quants.c: make_qkx2_quants, make_qx_quants,
 * make_q3_quants), as llama-quantize runs them without an importance matrix. Each picks, for one sub-block of n
 * values, a scale (and for the asymmetric types a min) and the integer levels L that go with it.
 *
 * ggml computes in float32, one rounding per operation (no FMA contraction, no reassociation), so every operation
 * here is rounded with Math.fround: a float32 +, −, ×, ÷ or √ computed in float64 and rounded once to float32 is
 * the float32 result. That keeps the chosen levels, scales and hence the bytes identical to ggml's.
 */

const f32 = Math.fround;

/** 1.5 · 2^23: adding it to a float32 of magnitude below 2^22 leaves the value rounded to an integer in the ulp. */
const ROUNDING_MAGIC = 12582912;
const magicScratch = new Float32Array(1);
const magicBits = new Int32Array(magicScratch.buffer);

/**
 * ggml's nearest_int: x (a float32) + 1.5 · 2^23 in float32, read back from the low 23 mantissa bits. For
 * |x| ≤ 4194303 that is x rounded to the nearest integer, ties to even (unlike roundf); beyond it ggml does not
 * clamp (its assert is compiled out), and the mantissa bits wrap around, which is reproduced here bit for bit.
 */
export function nearestInt(x: number): number {
  const sum = f32(x + ROUNDING_MAGIC);
  if (sum >= 8388608 && sum < 16777216) return sum - ROUNDING_MAGIC;
  magicScratch[0] = sum;
  return (magicBits[0] & 0x007fffff) - 0x00400000;
}

/** ggml's GROUP_MAX_EPS: a sub-block whose largest magnitude is below it counts as all zero. */
export const GROUP_MAX_EPS = f32(1e-15);

/** fitScaleAndMin's levels for the step it is trying. */
const candidateLevels = new Uint8Array(32);

/**
 * A type's search for fitScaleAndMin: levels 0..nmax, inverse scales (nmax + rmin + rdelta · k) / (max − min)
 * for k = 0..steps.
 */
export interface ScaleGrid {
  nmax: number;
  rmin: number;
  rdelta: number;
  steps: number;
  /** Weigh absolute errors (true) or squared errors (false). */
  absoluteError: boolean;
}

/**
 * ggml make_qkx2_quants: for the n values x[at..at+n) with weights w[0..n), a scale s and a min m ≤ 0 with levels
 * L in 0..nmax that minimise Σ w·|s·L + m − x| (or its square). Each candidate inverse scale of the grid rounds
 * (x − m) to levels, then s and m are the weighted least-squares fit of x to those levels (m clamped to 0); m starts
 * at min(x, 0) and, as in ggml, becomes the best fit's m for the steps after it. Writes the levels to
 * levels[lAt..lAt+n) (n ≤ 32), returns s and stores −m in mins[j].
 */
export function fitScaleAndMin(
  x: Float32Array,
  at: number,
  n: number,
  w: Float32Array,
  grid: ScaleGrid,
  levels: Uint8Array,
  lAt: number,
  mins: Float32Array,
  j: number,
): number {
  let min = x[at];
  let max = x[at];
  let sumW = w[0];
  let sumX = f32(sumW * x[at]);
  for (let i = 1; i < n; i++) {
    const v = x[at + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = f32(sumW + w[i]);
    sumX = f32(sumX + f32(w[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    levels.fill(0, lAt, lAt + n);
    mins[j] = -min;
    return 0;
  }
  const { nmax, rmin, steps, absoluteError } = grid;
  const rdelta = f32(grid.rdelta);
  let iscale = f32(nmax / f32(max - min));
  let scale = f32(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(f32(iscale * f32(x[at + i] - min)))));
    levels[lAt + i] = l;
    const diff = f32(f32(f32(scale * l) + min) - x[at + i]);
    bestError = f32(bestError + f32(w[i] * (absoluteError ? Math.abs(diff) : f32(diff * diff))));
  }
  for (let step = 0; step <= steps; step++) {
    // As in ggml, `min` here is the best fit's so far: a step after an improvement rounds against the new min.
    iscale = f32(f32(f32(rmin + f32(rdelta * step)) + nmax) / f32(max - min));
    let changed = step === 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(f32(iscale * f32(x[at + i] - min)))));
      if (candidateLevels[i] !== l) changed = true;
      candidateLevels[i] = l;
    }
    // The fit and its error depend on the levels alone: the same levels as the step before cannot do better.
    if (!changed) continue;
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = candidateLevels[i];
      const wl = f32(w[i] * l);
      sumL = f32(sumL + wl);
      sumL2 = f32(sumL2 + f32(wl * l));
      sumXL = f32(sumXL + f32(wl * x[at + i]));
    }
    const det = f32(f32(sumW * sumL2) - f32(sumL * sumL));
    if (!(det > 0)) continue;
    let thisScale = f32(f32(f32(sumW * sumXL) - f32(sumX * sumL)) / det);
    let thisMin = f32(f32(f32(sumL2 * sumX) - f32(sumL * sumXL)) / det);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = f32(sumXL / sumL2);
    }
    let error = 0;
    for (let i = 0; i < n; i++) {
      const diff = f32(f32(f32(thisScale * candidateLevels[i]) + thisMin) - x[at + i]);
      error = f32(error + f32(w[i] * (absoluteError ? Math.abs(diff) : f32(diff * diff))));
    }
    if (error < bestError) {
      for (let i = 0; i < n; i++) levels[lAt + i] = candidateLevels[i];
      bestError = error;
      scale = thisScale;
      min = thisMin;
    }
  }
  mins[j] = -min;
  return scale;
}

/** The value of largest magnitude among x[at..at+n) (the first of equal magnitudes), signed. */
function signedMax(x: Float32Array, at: number, n: number): number {
  let max = 0;
  let amax = 0;
  for (let i = at; i < at + n; i++) {
    const ax = Math.abs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

/**
 * ggml make_qx_quants with rmse_type 1 (q6_k): a signed scale s and levels l in −nmax..nmax−1 for x[at..at+n) that
 * minimise Σ x²·(x − s·l)². Starts from the scale that maps the value of largest magnitude to −nmax, tries 18
 * neighbouring inverse scales −(nmax ± 0.1·k) / max, and for each takes the least-squares s of its rounded levels,
 * keeping the one with the largest (Σ x²·x·l)² / Σ x²·l². Writes l + nmax to levels[lAt..lAt+n) and returns s.
 */
export function fitSymmetricScale(
  x: Float32Array,
  at: number,
  n: number,
  nmax: number,
  levels: Int8Array,
  lAt: number,
): number {
  const max = signedMax(x, at, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    levels.fill(0, lAt, lAt + n);
    return 0;
  }
  let sumLX = 0;
  let sumL2 = 0;
  let iscale = f32(-nmax / max);
  for (let i = 0; i < n; i++) {
    const v = x[at + i];
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f32(iscale * v))));
    levels[lAt + i] = l + nmax;
    const w = f32(v * v);
    sumLX = f32(sumLX + f32(f32(w * v) * l));
    sumL2 = f32(sumL2 + f32(f32(w * l) * l));
  }
  let scale = sumL2 !== 0 ? f32(sumLX / sumL2) : 0;
  let best = f32(scale * sumLX);
  for (let k = -9; k <= 9; k++) {
    if (k === 0) continue;
    iscale = f32(-f32(nmax + f32(f32(0.1) * k)) / max);
    sumLX = 0;
    sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i];
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f32(iscale * v))));
      const w = f32(v * v);
      sumLX = f32(sumLX + f32(f32(w * v) * l));
      sumL2 = f32(sumL2 + f32(f32(w * l) * l));
    }
    if (sumL2 > 0 && f32(sumLX * sumLX) > f32(best * sumL2)) {
      for (let i = 0; i < n; i++)
        levels[lAt + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(f32(iscale * x[at + i]))));
      scale = f32(sumLX / sumL2);
      best = f32(scale * sumLX);
    }
  }
  return scale;
}

/**
 * ggml make_q3_quants with do_rmse (q3_k): a signed scale s and levels l in −nmax..nmax−1 for x[at..at+n) that
 * minimise Σ x²·(x − s·l)². Starts from the levels of the scale that maps the value of largest magnitude to −nmax,
 * then (up to 5 sweeps, stopping when one changes nothing) moves each level to the one its value would get under
 * the least-squares scale of the others, when that raises (Σ x²·x·l)² / Σ x²·l². Writes l + nmax to
 * levels[lAt..lAt+n) (0 for an all-zero sub-block) and returns the least-squares s of the final levels.
 */
export function fitQ3Scale(
  x: Float32Array,
  at: number,
  n: number,
  nmax: number,
  levels: Int8Array,
  lAt: number,
): number {
  const max = signedMax(x, at, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    levels.fill(0, lAt, lAt + n);
    return 0;
  }
  const iscale = f32(-nmax / max);
  let sumLX = 0;
  let sumL2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[at + i];
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f32(iscale * v))));
    levels[lAt + i] = l;
    const w = f32(v * v);
    sumLX = f32(sumLX + f32(f32(w * v) * l));
    sumL2 = f32(sumL2 + f32(f32(w * l) * l));
  }
  for (let sweep = 0; sweep < 5; sweep++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i];
      const l = levels[lAt + i];
      const w = f32(v * v);
      let slx = f32(sumLX - f32(f32(w * v) * l));
      if (!(slx > 0)) continue;
      let sl2 = f32(sumL2 - f32(f32(w * l) * l));
      const newL = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f32(f32(v * sl2) / slx))));
      if (newL === l) continue;
      slx = f32(slx + f32(f32(w * v) * newL));
      sl2 = f32(sl2 + f32(f32(w * newL) * newL));
      if (sl2 > 0 && f32(f32(slx * slx) * sumL2) > f32(f32(sumLX * sumLX) * sl2)) {
        levels[lAt + i] = newL;
        sumLX = slx;
        sumL2 = sl2;
        changed++;
      }
    }
    if (changed === 0) break;
  }
  for (let i = 0; i < n; i++) levels[lAt + i] += nmax;
  return sumL2 > 0 ? f32(sumLX / sumL2) : 0;
}

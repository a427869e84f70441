import { Rng } from "../util/rng.js";

/** Seeded draws for workloads: uniform integers, standard normals and gamma variates. */
export class WorkloadRandom {
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.rng.nextFloat();
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rng.nextFloat() * (hi - lo + 1));
  }

  /** Box–Muller. */
  normal(): number {
    const u = 1 - this.rng.nextFloat(); // (0, 1]: log stays finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.rng.nextFloat());
  }

  /** Gamma(shape, scale) by Marsaglia and Tsang (2000); shape < 1 via the boost Gamma(shape+1)·U^(1/shape). */
  gamma(shape: number, scale: number): number {
    if (shape < 1) return this.gamma(shape + 1, scale) * (1 - this.float()) ** (1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const v = (1 + c * x) ** 3;
      if (v <= 0) continue;
      const u = 1 - this.float();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v * scale;
    }
  }
}

/**
 * A small seeded PRNG, one instance per request, so a request with a seed samples the same tokens
 * on every run regardless of what else is in the batch.
 *
 * xoshiro128** (Blackman & Vigna): 128 bits of state in four uint32 words, 32-bit outputs, plain
 * 32-bit integer arithmetic (no BigInt). The state is filled from the seed by splitmix32, which
 * spreads even small or similar seeds (0, 1, 2, …) over the whole state.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `seed` is any safe integer; distinct seeds give distinct states. */
  constructor(seed: number) {
    const low = seed >>> 0;
    const high = Math.floor(seed / 0x1_0000_0000) >>> 0;
    let counter = low;
    const next = () => {
      counter = (counter + 0x9e3779b9) | 0;
      return splitmix32(counter);
    };
    // s0 and s2 come from `low` alone (splitmix32 is a bijection) and differ, so at least one is
    // non-zero: the state is never all zero. `high` is mixed into s1 and s3.
    this.s0 = next();
    this.s1 = next() ^ splitmix32(high);
    this.s2 = next();
    this.s3 = next() ^ splitmix32(~high);
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const high27 = this.nextUint32() >>> 5;
    const low26 = this.nextUint32() >>> 6;
    return (high27 * 67108864 + low26) / 9007199254740992; // (high·2^26 + low) / 2^53
  }
}

/** A fresh seed for requests that did not ask for one. */
export function randomSeed(): number {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (words[0] & 0x1fffff) * 0x1_0000_0000 + words[1]; // 53 bits: a safe integer
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** splitmix32's output mix: a bijection on uint32 with good avalanche. */
function splitmix32(x: number): number {
  let t = x ^ (x >>> 16);
  t = Math.imul(t, 0x21f0aaad);
  t ^= t >>> 15;
  t = Math.imul(t, 0x735a2d97);
  return (t ^ (t >>> 15)) >>> 0;
}

import { expect, test } from "vitest";
import { geglu, ropeAngles, softcap } from "../../src/backend/reference/ops.js";

// The reference's new per-value maths against closed forms (the native kernels are tested against the reference).

test("GeGLU uses GELU's tanh form: PyTorch's gelu(x, approximate='tanh') at known points", () => {
  const x = Float32Array.of(-3, -1, 0, 0.5, 1, 2, 3);
  const want = [
    -0.0036373920817729943, -0.15880800939172324, 0, 0.34571400982514394, 0.8411919906082768,
    1.954597694087775, 2.996362607918227,
  ];
  geglu(x, new Float32Array(x.length).fill(1));
  x.forEach((v, i) => {
    expect(v).toBeCloseTo(want[i], 6);
  });
});

test("soft-capping: c · tanh(x / c), bounded by ±c and close to x when |x| ≪ c", () => {
  const x = Float64Array.of(-1000, -30, 0.01, 30);
  softcap(x, 30);
  expect(x[0]).toBeCloseTo(-30, 9);
  expect(x[1]).toBeCloseTo(-30 * Math.tanh(1), 12);
  expect(x[2]).toBeCloseTo(0.01, 6);
  expect(x[3]).toBeCloseTo(30 * Math.tanh(1), 12);
});

const dims = 64;
const theta = 10000;
const unscaled = (pos: number, i: number) => pos * theta ** ((-2 * i) / dims);

test("RoPE angles: pos · θ^(−2i/dims) unscaled; divided by the frequency factor; times freqScale with linear scaling", () => {
  const freqFactors = Float32Array.from({ length: dims / 2 }, (_, i) => 1 + i);
  const plain = ropeAngles({ dims, style: "neox", theta }, 7);
  const divided = ropeAngles({ dims, style: "neox", theta, freqFactors }, 7);
  const linear = ropeAngles(
    {
      dims,
      style: "neox",
      theta,
      scaling: {
        freqScale: 0.25,
        extFactor: 0,
        attnFactor: 1,
        betaFast: 32,
        betaSlow: 1,
        originalContext: 4096,
      },
    },
    7,
  );
  for (let i = 0; i < dims / 2; i++) {
    expect(plain.cos[i]).toBeCloseTo(Math.cos(unscaled(7, i)), 12);
    expect(plain.sin[i]).toBeCloseTo(Math.sin(unscaled(7, i)), 12);
    expect(divided.sin[i]).toBeCloseTo(Math.sin(unscaled(7, i) / (1 + i)), 12);
    expect(linear.sin[i]).toBeCloseTo(Math.sin(unscaled(7, i) * 0.25), 12);
  }
});

test("YaRN (factor 4 from 4096): pairs up to 10 keep their angle, pairs from 23 on are scaled, all magnified by 1 + 0.1·ln 4", () => {
  // ggml_rope_yarn_corr_dims: 64 · ln(4096 / (β · 2π)) / (2 · ln 10000) is 10.47 for β = 32 (floor: 10) and 22.53 for
  // β = 1 (ceil: 23).
  const pos = 1000;
  const { cos, sin } = ropeAngles(
    {
      dims,
      style: "neox",
      theta,
      scaling: {
        freqScale: 0.25,
        extFactor: 1,
        attnFactor: 1,
        betaFast: 32,
        betaSlow: 1,
        originalContext: 4096,
      },
    },
    pos,
  );
  const mscale = 1 + 0.1 * Math.log(4);
  for (let i = 0; i < dims / 2; i++) {
    const angle = Math.atan2(sin[i], cos[i]);
    expect(Math.hypot(sin[i], cos[i])).toBeCloseTo(mscale, 12);
    const wrap = (a: number) => Math.atan2(Math.sin(a), Math.cos(a));
    if (i <= 10) expect(angle).toBeCloseTo(wrap(unscaled(pos, i)), 9);
    if (i >= 23) expect(angle).toBeCloseTo(wrap(unscaled(pos, i) * 0.25), 9);
    if (i > 10 && i < 23) {
      const ramp = 1 - (i - 10) / (23 - 10);
      expect(angle).toBeCloseTo(wrap(unscaled(pos, i) * (0.25 * (1 - ramp) + ramp)), 9);
    }
  }
});

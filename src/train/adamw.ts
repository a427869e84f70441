import type { Vec } from "./compute.js";
import type { ParamSet } from "./params.js";

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (Loshchilov & Hutter), applied to matrices only: never to norm weights. */
  weightDecay: number;
}

/** Adam moments per parameter, by name, and the number of updates taken. */
export interface AdamWState {
  step: number;
  m: Map<string, Vec>;
  v: Map<string, Vec>;
}

export function newAdamWState(params: ParamSet, alloc: (n: number) => Vec): AdamWState {
  const m = new Map<string, Vec>();
  const v = new Map<string, Vec>();
  for (const p of params.values()) {
    m.set(p.name, alloc(p.value.length));
    v.set(p.name, alloc(p.value.length));
  }
  return { step: 0, m, v };
}

/**
 * One AdamW update at learning rate lr:
 * m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², w ← w − lr·(m̂ / (√v̂ + ε) + λ·w) with bias-corrected m̂, v̂.
 */
export function adamWStep(params: ParamSet, state: AdamWState, s: AdamWSettings, lr: number) {
  state.step++;
  const c1 = 1 - s.beta1 ** state.step;
  const c2 = 1 - s.beta2 ** state.step;
  for (const p of params.values()) {
    const m = state.m.get(p.name) as Vec;
    const v = state.v.get(p.name) as Vec;
    const decay = p.shape.length === 2 ? s.weightDecay : 0;
    const w = p.value;
    const g = p.grad;
    for (let i = 0; i < w.length; i++) {
      m[i] = s.beta1 * m[i] + (1 - s.beta1) * g[i];
      v[i] = s.beta2 * v[i] + (1 - s.beta2) * g[i] * g[i];
      w[i] -= lr * (m[i] / c1 / (Math.sqrt(v[i] / c2) + s.eps) + decay * w[i]);
    }
  }
}

/** Scales all gradients together so their global L2 norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(params: ParamSet, maxNorm: number): number {
  let ss = 0;
  for (const p of params.values()) for (let i = 0; i < p.grad.length; i++) ss += p.grad[i] * p.grad[i];
  const norm = Math.sqrt(ss);
  if (norm > maxNorm) {
    const scale = maxNorm / norm;
    for (const p of params.values()) for (let i = 0; i < p.grad.length; i++) p.grad[i] *= scale;
  }
  return norm;
}

/** Linear warmup from 0 to maxLr over warmupSteps, then cosine decay to minLr at totalSteps. */
export function learningRate(
  step: number,
  o: { maxLr: number; minLr: number; warmupSteps: number; totalSteps: number },
) {
  if (step < o.warmupSteps) return (o.maxLr * (step + 1)) / o.warmupSteps;
  const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps));
  return o.minLr + 0.5 * (o.maxLr - o.minLr) * (1 + Math.cos(Math.PI * progress));
}

import type { StepStats } from "../engine/stats.js";

/** One step's time, term by term, in seconds; the step takes their sum. */
export interface StepTerms {
  /** The forward pass without its attention: every matrix, norms, activations, hand-offs to the threads. */
  forward: number;
  attention: number;
  sampling: number;
  /** The engine's own work around the model: scheduling, batch building, updates, streaming the outputs. */
  overhead: number;
}

export const stepTermNames = ["forward", "attention", "sampling", "overhead"] as const;

export const totalTime = (t: StepTerms) => t.forward + t.attention + t.sampling + t.overhead;

/** A real step's terms: what the engine timed, and its overhead up to the next step's start. */
export interface MeasuredStep {
  step: StepStats;
  terms: StepTerms;
}

/**
 * The steps of a busy engine (each followed by the next with no idle gap) as terms: the forward pass less its
 * attention, the attention (the backend's own timer), sampling, and the rest of the time to the next step's
 * start, which is the engine's overhead.
 */
export function measuredSteps(steps: readonly StepStats[]): MeasuredStep[] {
  const start = (s: StepStats) => s.time - s.duration;
  return steps.slice(0, -1).flatMap((step, i) => {
    const interval = start(steps[i + 1]) - start(step);
    // A gap beyond the step's own duration plus a turn of the event loop: the engine went idle.
    if (interval > step.duration + idleGapSeconds) return [];
    const forward = step.forwardSeconds - step.attentionSeconds;
    const terms = {
      forward,
      attention: step.attentionSeconds,
      sampling: step.sampleSeconds,
      overhead: interval - step.forwardSeconds - step.sampleSeconds,
    };
    return [{ step, terms }];
  });
}

const idleGapSeconds = 0.02;

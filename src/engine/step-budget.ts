import { defaultEngineConfig } from "./engine-config.js";

/**
 * What one engine step costs on the loaded model, measured at startup: every running request waits for the
 * whole step, so a long prefill chunk stretches every decode's time per output token.
 */
export interface StepRates {
  /** One decode token of one sequence. */
  decodeStepSeconds: number;
  /** Each token of a prefill chunk. */
  prefillTokenSeconds: number;
}

/** A prefill chunk may cost about this many decode steps. */
export const decodeStepsPerChunk = 2;
/** The smallest budget: below it per-step overheads outweigh what a smaller chunk saves. */
export const minStepBudget = 64;

/**
 * The most tokens whose prefill costs at most decodeStepsPerChunk decode steps, rounded down to whole KV blocks,
 * and kept between minStepBudget (or one block) and the fixed default budget.
 */
export function prefillBudget(rates: StepRates, blockSize: number): number {
  const lower = Math.ceil(Math.max(minStepBudget, blockSize) / blockSize) * blockSize;
  const upper = Math.max(lower, Math.floor(defaultEngineConfig.maxNumBatchedTokens / blockSize) * blockSize);
  const fits = (decodeStepsPerChunk * rates.decodeStepSeconds) / rates.prefillTokenSeconds;
  return Math.min(upper, Math.max(lower, Math.floor(fits / blockSize) * blockSize));
}

export interface StepBudgets {
  maxNumBatchedTokens: number;
  longPrefillTokenThreshold: number;
  /** 0: no cap beyond maxNumBatchedTokens. */
  maxPrefillTokensPerStep: number;
}

export interface ChosenStepBudgets extends StepBudgets {
  /** Both came from the measured rates. */
  measured: boolean;
}

/**
 * The scheduler's token budgets. Either flag the user set keeps them as given or fixed by default; with neither
 * set and rates measured, a step's prefill tokens, all requests together, are capped at prefillBudget, so a step
 * costs at most ~2 decode steps more than its decodes, and decodes keep the fixed total budget.
 */
export function stepBudgets(
  given: Partial<Omit<StepBudgets, "maxPrefillTokensPerStep">>,
  rates: StepRates | undefined,
  blockSize: number,
): ChosenStepBudgets {
  if (!rates || given.maxNumBatchedTokens !== undefined || given.longPrefillTokenThreshold !== undefined)
    return {
      maxNumBatchedTokens: given.maxNumBatchedTokens ?? defaultEngineConfig.maxNumBatchedTokens,
      longPrefillTokenThreshold:
        given.longPrefillTokenThreshold ?? defaultEngineConfig.longPrefillTokenThreshold,
      maxPrefillTokensPerStep: 0,
      measured: false,
    };
  return {
    maxNumBatchedTokens: defaultEngineConfig.maxNumBatchedTokens,
    longPrefillTokenThreshold: defaultEngineConfig.longPrefillTokenThreshold,
    maxPrefillTokensPerStep: prefillBudget(rates, blockSize),
    measured: true,
  };
}

import { kvCacheGroups, layersPerBlock } from "../core/kv-cache-groups.js";
import { numBlocksForBudget } from "../core/kv-cache-sizing.js";
import { defaultEngineConfig, type EngineConfig } from "../engine/engine-config.js";
import { stepBudgets } from "../engine/step-budget.js";
import { InputError } from "../model/errors.js";
import type { ServeSettings } from "../workload/compare.js";
import { CostModel } from "./cost-model.js";
import type { ModelProfile } from "./model-profile.js";
import type { HardwareProfile, KvDtype, WeightDtype } from "./types.js";

export interface SimSetupInput {
  model: ModelProfile;
  hardware: HardwareProfile;
  weightDtype: WeightDtype;
  kvDtype: KvDtype;
  overheadBytes: number;
  /** KV cache budget; default: device memory − weights − overhead, as `plan` computes it. */
  kvCacheBytes?: number;
  maxModelLen: number;
  maxNumSeqs: number;
  /**
   * The scheduler's token budgets, as `vellum serve` takes them: either one given keeps them as given (or by
   * default); neither given on a profile with measured rates (cpu-local), serve's measured step budget applies,
   * from the cost model's own step rates (step-budget.ts), as serve derives it from the rates it measures.
   */
  maxNumBatchedTokens?: number;
  longPrefillTokenThreshold?: number;
  blockSize: number;
  settings: ServeSettings;
}

/** The engine configuration and cost model a simulated server runs with. */
export function simSetup(s: SimSetupInput): { engine: EngineConfig; cost: CostModel } {
  const cost = new CostModel(s.model.config, s.weightDtype, s.kvDtype, s.hardware, s.blockSize);
  const budget = s.kvCacheBytes ?? s.hardware.memoryBytes - cost.weightBytes - s.overheadBytes;
  if (budget <= 0) {
    throw new InputError(
      `${s.model.name} does not fit on ${s.hardware.name}: ${s.weightDtype} weights take ${(cost.weightBytes / 1e9).toFixed(1)} GB of ${(s.hardware.memoryBytes / 1e9).toFixed(1)} GB (see vellum plan)`,
    );
  }
  // The engine's KV cache groups: window layers give back what left their window (not under contiguous allocation).
  const groups = kvCacheGroups(s.model.config.layerWindows, s.settings.kvAllocation === "paged");
  const blockBytes = (cost.kvBytesPerToken / s.model.config.nLayers) * layersPerBlock(groups) * s.blockSize;
  let numBlocks: number;
  try {
    numBlocks = numBlocksForBudget(budget, blockBytes, s.blockSize);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  const budgets = stepBudgets(
    { maxNumBatchedTokens: s.maxNumBatchedTokens, longPrefillTokenThreshold: s.longPrefillTokenThreshold },
    s.hardware.measuredRates && cost.stepRates(),
    s.blockSize,
  );
  const engine: EngineConfig = {
    ...defaultEngineConfig,
    maxModelLen: s.maxModelLen,
    maxNumSeqs: s.maxNumSeqs,
    maxNumBatchedTokens: budgets.maxNumBatchedTokens,
    longPrefillTokenThreshold: budgets.longPrefillTokenThreshold,
    maxPrefillTokensPerStep: budgets.maxPrefillTokensPerStep,
    blockSize: s.blockSize,
    numBlocks,
    kvCacheGroups: groups,
    kvAllocation: s.settings.kvAllocation,
    batching: s.settings.batching,
    enablePrefixCaching: s.settings.prefixCaching,
  };
  return { engine, cost };
}

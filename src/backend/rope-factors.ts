import { type ModelConfig, tensorNames } from "../model/config.js";

/**
 * The tensor of RoPE frequency divisors a model uses when served with contexts of up to `contextLength` tokens:
 * rope_freqs ("fixed"), or for LongRoPE the long factors when that context is longer than the one the model was
 * trained at before scaling, else the short ones — llama.cpp's choice (llama_model::get_rope_factors, by its
 * context size per sequence). Undefined when the model has none.
 */
export function ropeFactorsTensor(c: ModelConfig, contextLength: number): string | undefined {
  switch (c.ropeFreqFactors) {
    case "none":
      return undefined;
    case "fixed":
      return tensorNames.ropeFreqs;
    case "longrope":
      return contextLength > (c.ropeScaling?.originalContext ?? c.maxSeqLen)
        ? tensorNames.ropeFactorsLong
        : tensorNames.ropeFactorsShort;
  }
}

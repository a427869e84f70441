/**
 * RoPE scaling values as llama.cpp and its converter (convert_hf_to_gguf.py) compute them, so that a model read
 * from config.json, from GGUF or built synthetically carries the numbers llama.cpp would use.
 */

/** Llama 3's rope_scaling (rope_type "llama3"). */
export interface Llama3RopeParams {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalContext: number;
}

/** convert_hf_to_gguf.py's defaults for the llama3 keys a config.json leaves out. */
export const llama3Defaults: Llama3RopeParams = {
  factor: 8,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalContext: 8192,
};

/**
 * rope_freqs.weight of Llama 3 scaling: per rotated pair, 1 for short wavelengths, `factor` for long ones and a
 * smooth mix between. Written step by step as the converter's float32 torch code runs, each step rounded to
 * float32 (torch's `x / t` for a tensor t is `t.reciprocal() * x`); its float32 power is taken as correctly
 * rounded.
 */
export function llama3RopeFreqs(p: Llama3RopeParams, ropeTheta: number, headDim: number): Float32Array {
  const f = Math.fround;
  const lowFreqWavelen = f(p.originalContext / p.lowFreqFactor);
  const highFreqWavelen = f(p.originalContext / p.highFreqFactor);
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const freq = f(1 / f(f(ropeTheta) ** f((2 * i) / headDim)));
    const wavelen = f(f(1 / freq) * f(2 * Math.PI));
    if (wavelen < highFreqWavelen) {
      out[i] = 1;
    } else if (wavelen > lowFreqWavelen) {
      out[i] = p.factor;
    } else {
      const smooth = f(
        f(f(f(1 / wavelen) * f(p.originalContext)) - f(p.lowFreqFactor)) /
          f(p.highFreqFactor - p.lowFreqFactor),
      );
      out[i] = f(1 / f(f(f(1 - smooth) / f(p.factor)) + smooth));
    }
  }
  return out;
}

/**
 * The attn_factor llama.cpp passes to ggml_rope_ext under YaRN scaling by `factor` (llama-context.cpp):
 * YaRN's magnitude correction 1 + 0.1·ln(factor) divided by the same term, which ggml_rope applies itself,
 * times the file's rope.scaling.attn_factor.
 */
export function yarnAttnFactor(factor: number, ropeAttnFactor: number): number {
  const mscale = factor <= 1 ? 1 : 0.1 * Math.log(factor) + 1;
  return (mscale / (1 + 0.1 * Math.log(factor))) * ropeAttnFactor;
}

/**
 * Phi-3's LongRoPE attention factor as convert_hf_to_gguf.py writes it (rope.scaling.attn_factor):
 * √(1 + ln(s) / ln(originalContext)) with s = context / originalContext, or 1 when s ≤ 1.
 */
export function longRopeAttnFactor(context: number, originalContext: number): number {
  const scale = context / originalContext;
  return scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(originalContext)) : 1;
}

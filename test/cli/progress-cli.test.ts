import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { expectedTensors } from "../../src/model/config.js";
import { tensorBytes } from "../../src/model/dtype.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { writeHfModel } from "../../src/model/formats/hf-model.js";
import { loadModel } from "../../src/model/load.js";
import { shapeConfig } from "../../src/model/profiles.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
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

const addon = loadNativeAddon();
/** Whether this CPU's best kernels read q8_0 matrices from interleaved copies (every path but scalar). */
const interleaves = !(addon instanceof Error) && addon.bestKernelPath() !== "scalar";

describe("progress bars: synth-model's random weights, loading a Hugging Face directory, interleaving weights", () => {
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

  test.skipIf(!hasTmux || !interleaves)(
    "the native backend's interleaving of a q8_0 model, on a terminal, to its matrices' size",
    async () => {
      const model = syntheticModel("tiny-test", "q8_0", 2);
      const path = join(dir, "tiny-q8_0.gguf");
      writeGgufModel(model, path, { dtype: "q8_0" });
      // Every matrix but the embedding (read by rows in place) is copied: tiny-test's rows come in groups of 8.
      let bytes = 0;
      for (const [name, t] of loadModel(path).tensors)
        if (t.dtype === "q8_0" && name !== "token_embd.weight") bytes += tensorBytes(t.dtype, t.shape);
      const kib = Math.round(bytes / 1024);
      await startVellum("interleave", "generate", "--model", path, "--prompt", "a", "--max-tokens", "2");
      await waitFor(async () => (await pane("interleave")).includes("exited with 0"), 60_000);
      expect(await pane("interleave")).toMatch(
        new RegExp(`interleaving weights .* 100% \\| ${kib}/${kib} KiB`),
      );
      const piped = await runCli(["generate", "--model", path, "--prompt", "a", "--max-tokens", "2"]);
      expect(piped.code).toBe(0);
      expect(piped.stderr).not.toContain("interleaving weights");
    },
  );

  test("piped, there is no bar: only the one line saying what was written", async () => {
    const out = join(dir, "piped.gguf");
    const r = await runCli(["synth-model", "--shape", "tiny-test", "--out", out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(`^wrote ${out}: synthetic tiny-test \\(q8_0, seed 0\\) in [\\d.]+ s\\n$`),
    );
  });
});

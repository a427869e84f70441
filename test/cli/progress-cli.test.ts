import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { expectedTensors } from "../../src/model/config.js";
import { shapeConfig } from "../../src/model/profiles.js";
import { waitFor } from "../helpers.js";
import { runCli } from "./run-cli.js";
import { hasTmux, killTmux, pane, startVellum } from "./tmux.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-progress-"));
const numTensors = expectedTensors(shapeConfig("tiny-test")).size;

describe("synth-model's progress bar", () => {
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

  test("piped, there is no bar: only the one line saying what was written", async () => {
    const out = join(dir, "piped.gguf");
    const r = await runCli(["synth-model", "--shape", "tiny-test", "--out", out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(`^wrote ${out}: synthetic tiny-test \\(q8_0, seed 0\\) in [\\d.]+ s\\n$`),
    );
  });
});

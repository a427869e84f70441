/**
 * The Hub from the command line, as a user runs it: `--model hf:…` in generate, `vellum pull|ls|rm`, HF_ENDPOINT,
 * HF_HUB_CACHE, HF_TOKEN, and two pulls in two processes at once. The CLI runs as a child process against the local
 * Hub in this process.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import {
  type Fixtures,
  gatedRepo,
  ggufRepo,
  grantedToken,
  makeFixtures,
  mambaRepo,
} from "../hub/hub-fixtures.js";
import { type HubServer, startHubServer } from "../hub/hub-server.js";
import { runCli } from "./run-cli.js";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

let fixtures: Fixtures;
let hub: HubServer;
let cacheDir: string;

beforeAll(async () => {
  fixtures = makeFixtures();
  hub = await startHubServer({ repos: fixtures.repos });
  cacheDir = mkdtempSync(join(tmpdir(), "vellum-hf-cli-cache-"));
});
afterAll(() => hub.close());

/** Runs the built CLI with the Hub at HF_ENDPOINT and the cache at HF_HUB_CACHE; never throws. */
function vellum(args: string[], env: Record<string, string> = {}) {
  const { HF_TOKEN: _token, HF_HUB_OFFLINE: _offline, ...inherited } = process.env;
  return runCli(args, { ...inherited, HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir, ...env });
}

const generateArgs = [
  "generate",
  "--prompt",
  "In the beginning",
  "--max-tokens",
  "8",
  "--temperature",
  "0",
  "--json",
];

describe("vellum with models from the Hub", () => {
  test("generate --model hf:ORG/REPO:QUANT downloads, says it can serve it, and generates as from the file", async () => {
    const pulled = await vellum([...generateArgs, "--model", `hf:${ggufRepo}:F16`]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stderr).toMatch(
      /kjv-demo-F16\.gguf \(6\.1 MiB to download\): llama, .*: vellum can serve it/,
    );
    // Not a terminal: log lines, not a bar.
    expect(pulled.stderr).toMatch(
      /downloaded kjv-demo-F16\.gguf \(6\.1 MiB, checked against the Hub's hash\)/,
    );
    const local = await vellum([...generateArgs, "--model", bundledModelPath]);
    expect(JSON.parse(pulled.stdout)).toEqual(JSON.parse(local.stdout));

    const again = await vellum([...generateArgs, "--model", `hf:${ggufRepo}:F16`], { HF_HUB_OFFLINE: "1" });
    expect(again.stderr).toBe("");
    expect(JSON.parse(again.stdout)).toEqual(JSON.parse(local.stdout));
  });

  test("two `vellum pull` processes at once: one download, both succeed", async () => {
    const file = "kjv-demo-Q4_K_M.gguf";
    // Past the 1 MiB the header check reads: the hold stalls the download itself.
    const held = hub.hold(ggufRepo, file, 1_500_000);
    const first = vellum(["pull", `hf:${ggufRepo}:Q4_K_M`]);
    await held.reached;
    const listings = () =>
      hub.requests.filter((r) => r.path.startsWith(`/api/models/${ggufRepo}/tree/`)).length;
    const before = listings();
    const second = vellum(["pull", `hf:${ggufRepo}:Q4_K_M`]);
    // Once the second has listed the files it finds the blob missing and waits for the first one's lock.
    while (listings() === before) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    held.release();
    const [a, b] = await Promise.all([first, second]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout).toMatch(new RegExp(`${file} \\(\\d+\\.\\d MiB downloaded\\)`));
    expect(b.stdout).toMatch(new RegExp(`${file} \\(already in the cache\\)`));
    const downloads = hub.requests.filter(
      (r) => r.path.startsWith("/cdn/") && r.path.endsWith(file) && !r.range,
    );
    expect(downloads).toHaveLength(1);
    const blobs = readdirSync(join(cacheDir, `models--${ggufRepo.replace("/", "--")}`, "blobs"));
    expect(blobs).toContain(sha256(fixtures.content(ggufRepo, file)));
    expect(blobs.filter((b) => b.endsWith(".incomplete"))).toEqual([]);
  });

  test("ls shows the cached models; rm removes one", async () => {
    const listed = await vellum(["ls"]);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = listed.stdout.trim().split("\n");
    expect(rows[0].split(/\s+/)).toEqual(["MODEL", "SIZE", "QUANT", "ARCH", "VELLUM"]);
    expect(rows).toContainEqual(
      expect.stringMatching(new RegExp(`^hf:${ggufRepo}:F16 +6\\.1 MiB +F16 +llama +yes$`)),
    );
    expect(rows).toContainEqual(
      expect.stringMatching(new RegExp(`^hf:${ggufRepo}:Q4_K_M +.* +Q4_K_M +llama +yes$`)),
    );

    const removed = await vellum(["rm", `hf:${ggufRepo}:F16`]);
    expect(removed.stdout).toMatch(/removed .*F16 \(6\.1 MiB freed\)/);
    expect((await vellum(["ls"])).stdout).not.toMatch(/:F16/);
  });

  test("errors are one line: gated without a token, an unsupported architecture, offline and not cached", async () => {
    const oneLine = (r: { code: number; stderr: string }, pattern: RegExp) => {
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    };
    oneLine(
      await vellum(["pull", `hf:${gatedRepo}:Q8_0`]),
      /is gated; accept its conditions at .* set HF_TOKEN/,
    );
    const granted = await vellum(["pull", `hf:${gatedRepo}:Q8_0`], { HF_TOKEN: grantedToken });
    expect(granted.code, granted.stderr).toBe(0);
    const pullMamba = await vellum(["pull", `hf:${mambaRepo}:Q8_0`]);
    expect(pullMamba.code).toBe(1);
    expect(pullMamba.stderr).toMatch(
      /vellum cannot serve .*mamba-Q8_0\.gguf, so nothing more was downloaded/,
    );
    oneLine(
      await vellum(["serve", "--model", `hf:${ggufRepo}:Q5_K_M`], { HF_HUB_OFFLINE: "1" }),
      /not in the Hugging Face cache .* HF_HUB_OFFLINE is set/,
    );
    oneLine(await vellum(["pull", "hf:nobody"]), /no repository name; expected hf:ORG\/REPO/);
  });
});

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { waitFor } from "../helpers.js";
import { runCli } from "./run-cli.js";
import { hasTmux, killTmux, pane, startVellum, tmux } from "./tmux.js";

const packageVersion = JSON.parse(
  readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8"),
).version;

describe("vellum --version, and --port checked before the model loads", () => {
  test("--version prints package.json's version", async () => {
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${packageVersion}\n`);
  });

  test("a port in use is one line, found before the model (here a missing file) is looked at", async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const r = await runCli(["serve", "--port", String(port), "--model", "/no/such/model.gguf"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`vellum: cannot listen on 127.0.0.1:${port}: the port is in use (EADDRINUSE)\n`);
    } finally {
      taken.close();
    }
  });

  test("a port out of range is one line naming --port", async () => {
    for (const port of ["65536", "-1", "80.5", "http"]) {
      const r = await runCli(["serve", "--port", port, "--model", "/no/such/model.gguf"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `error: option '--port <port>' argument '${port}' is invalid. expected a port number from 0 to 65535\n`,
      );
    }
  });
});

describe.skipIf(!hasTmux)("vellum serve's logs in a terminal (tmux)", () => {
  afterAll(killTmux);

  /** Starts serve in a pane and returns the pane's lines once it serves; stops it with Ctrl-C. */
  async function servedLines(session: string, ...args: string[]): Promise<string[]> {
    await startVellum(session, "serve", "--port", "0", "--backend", "reference", ...args);
    await waitFor(async () => /serving .* at http/.test(await pane(session)), 60_000);
    const lines = (await pane(session)).split("\n").filter((line) => line !== "");
    await tmux(["send-keys", "-t", session, "C-c"]);
    await waitFor(async () => (await pane(session)).includes("exited with 0"), 30_000);
    return lines;
  }

  test("human-readable on a terminal: time, level, message", async () => {
    const lines = await servedLines("text");
    expect(lines.find((line) => line.includes("serving"))).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: serving "kjv-demo" at http:\/\/127\.0\.0\.1:\d+\/v1$/,
    );
    expect(lines.some((line) => line.startsWith("{"))).toBe(false);
  });

  test("--log-format json: one JSON object a line, on a terminal too", async () => {
    const lines = await servedLines("json", "--log-format", "json");
    const serving = lines.find((line) => line.includes("serving"));
    expect(JSON.parse(serving ?? "")).toMatchObject({
      level: 30,
      msg: expect.stringMatching(/^serving "kjv-demo"/),
    });
  });
});

describe.skipIf(loadNativeAddon() instanceof Error)("vellum serve on the native backend", () => {
  test("logs when its KV cache's memory is resident, after it has begun serving", async () => {
    const cli = join(import.meta.dirname, "..", "..", "bin", "vellum.js");
    const args = ["serve", "--port", "0", "--backend", "native", "--kv-cache-memory", "256MiB"];
    const child = spawn("node", [cli, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    try {
      await waitFor(async () => stdout.includes("KV cache resident"), 60_000);
    } finally {
      child.kill("SIGTERM");
    }
    const messages = stdout
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line).msg as string);
    const serving = messages.findIndex((m) => m.startsWith("serving"));
    const resident = messages.findIndex((m) => m.startsWith("KV cache resident"));
    expect(serving).toBeGreaterThanOrEqual(0);
    expect(resident).toBeGreaterThan(serving);
    expect(messages[resident]).toMatch(
      /^KV cache resident \d+\.\d s after serving began: steps no longer pay page faults for new blocks$/,
    );
  });
});

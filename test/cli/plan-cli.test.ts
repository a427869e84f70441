import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { registerBench } from "../../src/cli/bench.js";
import { registerPlan } from "../../src/cli/plan.js";
import { registerSimulate } from "../../src/cli/simulate.js";
import { runVellum } from "./in-process.js";

/** Runs `vellum ARGS` in-process with the plan, simulate and bench commands. */
const vellum = (...args: string[]) => runVellum([registerPlan, registerSimulate, registerBench], args);

function expectOneLineError(r: { code: number | string; stderr: string }, needle: RegExp) {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(needle);
}

describe("vellum plan", () => {
  it("prints the textbook example with both columns and states its units", async () => {
    const r = await vellum(
      "plan",
      "--model",
      "llama-2-7b",
      "--hardware",
      "a100-80gb",
      "--max-model-len",
      "4096",
      "--avg-tokens",
      "300",
      "--context-len",
      "1000",
      "--overhead",
      "2GB",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/weights \(fp16\)\s+13\.48 GB \(12\.55 GiB\)\s+14 GB/);
    expect(r.stdout).toMatch(/max requests, preallocated to 4,096\s+32 .*\s32\n/);
    expect(r.stdout).toMatch(/max requests, paged at 300 tokens\s+441 .*\s426\n/);
    expect(r.stdout).toMatch(
      /decode step floor, 1 request at 1,000 tokens\s+6\.87 ms, memory-bound.*7\.25 ms at 2 TB\/s/,
    );
    expect(r.stdout).toMatch(/Units: GB\/MB\/TB are decimal/);
  });

  it("prints JSON with --json", async () => {
    const r = await vellum(
      "plan",
      "--model",
      "llama-3-70b",
      "--hardware",
      "h100-80gb",
      "--weight-dtype",
      "int4",
      "--json",
    );
    const { plan } = JSON.parse(r.stdout);
    expect(plan.kvBytesPerToken).toBe(2 * 80 * 8 * 128 * 2);
    expect(plan.longestSequenceByDtype.fp16).toBeNull();
  });

  it("gives one line for an unknown profile or a model that does not fit", async () => {
    expectOneLineError(
      await vellum("plan", "--model", "llama-2-7b", "--hardware", "tpu"),
      /unknown hardware "tpu"/,
    );
    expectOneLineError(
      await vellum("plan", "--model", "llama-9-7b", "--hardware", "l4"),
      /unknown model "llama-9-7b"/,
    );
    expectOneLineError(
      await vellum("plan", "--model", "llama-2-13b", "--hardware", "l4"),
      /llama-2-13b does not fit on l4: fp16 weights take 26\.0 GB.*int8/,
    );
    expectOneLineError(
      await vellum("plan", "--model", "llama-2-7b", "--hardware", "l4", "--weight-dtype", "fp4"),
      /--weight-dtype must be one of fp32, fp16, int8, int4, got "fp4"/,
    );
  });
});

describe("vellum simulate", () => {
  it("runs the same workload on two configurations and prints their ratios", async () => {
    const r = await vellum(
      "simulate",
      "--model",
      "llama-2-7b",
      "--hardware",
      "h100-80gb",
      "--num-prompts",
      "40",
      "--request-rate",
      "20",
      "--input-len",
      "512",
      "--output-len",
      "64",
      "--compare",
      "batching=continuous,static",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/=+ Simulated: batching=continuous =+/);
    expect(r.stdout).toMatch(/request throughput \(req\/s\)\s+[\d.]+\s+[\d.]+\s+[\d.]+x/);
  });

  it("gives one line for a model that does not fit", async () => {
    expectOneLineError(
      await vellum("simulate", "--model", "llama-2-70b", "--hardware", "rtx-4090"),
      /llama-2-70b does not fit on rtx-4090/,
    );
  });
});

describe("vellum bench serve", () => {
  it("gives one line for an unreachable server", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise((resolve) => server.close(resolve));
    expectOneLineError(
      await vellum("bench", "serve", "--base-url", url, "--num-prompts", "1"),
      /cannot reach the server at .*ECONNREFUSED/,
    );
  });

  it("gives one line for a server that does not speak OpenAI", async () => {
    const server = createServer((_req, res) => res.end("hello"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expectOneLineError(
        await vellum("bench", "serve", "--base-url", url),
        /did not answer like an OpenAI-compatible server/,
      );
    } finally {
      server.close();
    }
  });
});

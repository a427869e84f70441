import { describe, expect, it } from "vitest";
import { registerSimulate } from "../../src/cli/simulate.js";
import { runVellum } from "./in-process.js";

const vellum = (...args: string[]) => runVellum([registerSimulate], args);
const fleet = ["simulate", "--model", "llama3-8b", "--hardware", "h100-80gb", "--num-prompts", "40"];

describe("vellum simulate --replicas", () => {
  it("prints one row per router and scrape interval (round-robin once: it reads no metrics)", async () => {
    const r = await vellum(
      ...fleet,
      "--replicas",
      "3",
      "--dataset",
      "chat",
      "--request-rate",
      "20",
      "--scrape-interval",
      "0,inf",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/3 × llama3-8b on h100-80gb, chat workload of 40 requests/);
    expect(r.stdout).toMatch(/router\s+scrape ms\s+req\/s\s+out tok\/s\s+TTFT p50\/p90\/p99 ms/);
    const rows = r.stdout
      .split("\n")
      .filter((l) => /^(round-robin|least-queue|kv-usage|prefix-aware) /.test(l));
    expect(rows.map((l) => l.split(/\s+/).slice(0, 2).join(" "))).toEqual([
      "round-robin -",
      "least-queue 0",
      "least-queue inf",
      "kv-usage 0",
      "kv-usage inf",
      "prefix-aware 0",
      "prefix-aware inf",
    ]);
  });

  it.each([
    [
      ["--replicas", "2", "--router", "random"],
      /--router must be one or more of round-robin, least-queue, kv-usage, prefix-aware .*"random"/,
    ],
    [
      ["--replicas", "2", "--scrape-interval", "-5"],
      /--scrape-interval must be milliseconds ≥ 0 or inf .*"-5"/,
    ],
    [["--router", "least-queue"], /--router needs --replicas/],
    [
      ["--replicas", "2", "--compare", "batching=continuous,static"],
      /--compare cannot be combined with --replicas/,
    ],
    [["--replicas", "2", "--max-concurrency", "4"], /--max-concurrency cannot be combined with --replicas/],
    [["--replicas", "2", "--goodput", "ttft:500"], /--goodput cannot be combined with --replicas/],
    [["--turns", "3"], /--turns applies to --dataset chat only, not random/],
    [["--replicas", "0"], /--replicas.*'0' is invalid/],
    [["--dataset", "chat", "--turns", "0"], /--turns.*'0' is invalid/],
  ])("rejects %j with one line", async (args, message) => {
    const r = await vellum(...fleet, ...args);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});

import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { registerBench } from "../../src/cli/bench.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { runVellum } from "./in-process.js";

/** Parses `vellum bench ARGS` in-process. */
const vellumBench = (...args: string[]) => runVellum([registerBench], ["bench", ...args]);

const benches = [
  "probe",
  "latency",
  "batch-scaling",
  "build-llama-cpp",
  "compare",
  "batching",
  "load-model",
  "allocate-slots",
  "serve",
  "simulate-vs-measured",
];

/** A --llama-cpp directory that holds llama-bench but not the other two binaries. */
const partialBuild = mkdtempSync(join(tmpdir(), "vellum-llama-cpp-bin-"));
writeFileSync(join(partialBuild, "llama-bench"), "");

describe("vellum bench parses every subcommand's flags with commander", () => {
  it("prints each one's usage for --help and exits 0", async () => {
    for (const name of benches) {
      const r = await vellumBench(name, "--help");
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: vellum bench ${name} `));
    }
  });

  it("gives one line naming the flag and exit 1 for a bad value, before any model is read", async () => {
    const model = ["--model", "/nonexistent/model.gguf"];
    const cases: [string[], RegExp][] = [
      [["probe", "--threads", "0"], /--threads.*'0' is invalid/],
      [["latency", ...model, "--prompt", "many"], /--prompt.*'many' is invalid/],
      [["latency", ...model, "--kv-cache-dtype", "f8"], /--kv-cache-dtype.*'f8' is invalid.*f32, f16/],
      [["batch-scaling", ...model, "--batches", "1,x"], /--batches.*'1,x' is invalid/],
      [["batch-scaling", ...model, "--kernels", "neon"], /--kernels.*'neon' is invalid/],
      [["compare", ...model, "--streams", "16,0"], /--streams.*'16,0' is invalid/],
      [["compare", ...model], /required option '--llama-cpp/],
      [
        ["compare", ...model, "--llama-cpp", "/no/llama"],
        /--llama-cpp \/no\/llama: no such directory.*build-llama-cpp/,
      ],
      [["compare", ...model, "--llama-cpp", partialBuild], /no llama-batched-bench there.*build-llama-cpp/],
      [["build-llama-cpp", "--dir"], /option '--dir <dir>' argument missing/],
      [["batching", ...model, "--backend", "gpu"], /--backend.*'gpu' is invalid.*native, reference/],
      [["batching", ...model, "--repeat", "0"], /--repeat.*'0' is invalid/],
      [["serve", "--kv-cache-memory", "lots"], /--kv-cache-memory.*'lots' is invalid/],
      [
        ["simulate-vs-measured", ...model, "--workloads", "light,huge"],
        /--workloads.*'light,huge' is invalid.*huge is not one of light, heavy, mixed/,
      ],
      [["latency", "--threads", "2"], /required option '--model/],
      [["load-model"], /missing required argument 'model'/],
      [["allocate-slots", "--threads", "2"], /unknown option '--threads'/],
    ];
    for (const [args, needle] of cases) {
      const r = await vellumBench(...args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(needle);
    }
  });
});

describe("vellum bench build-llama-cpp", () => {
  it("names the tool it needs when it is not on PATH, before cloning anything", async () => {
    const path = process.env.PATH;
    const dir = mkdtempSync(join(tmpdir(), "vellum-llama-cpp-"));
    process.env.PATH = mkdtempSync(join(tmpdir(), "vellum-empty-path-"));
    try {
      const r = await vellumBench("build-llama-cpp", "--dir", dir);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("vellum: build-llama-cpp needs git, and there is no git on PATH\n");
    } finally {
      process.env.PATH = path;
    }
  });

  it("refuses a --dir whose src holds another llama.cpp commit, naming both", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-llama-cpp-"));
    const src = join(dir, "src");
    mkdirSync(src);
    const git = (...args: string[]) => execFileSync("git", ["-C", src, ...args], { encoding: "utf8" }).trim();
    git("init", "-q");
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "other");
    const r = await vellumBench("build-llama-cpp", "--dir", dir, "--configure-only");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^vellum: ${src} holds llama.cpp ${git("rev-parse", "HEAD")}, the bundle [0-9a-f]{40}: remove it`,
      ),
    );
  });
});

describe.skipIf(loadNativeAddon() instanceof Error)("vellum bench compare on the native backend", () => {
  it("names the llama.cpp command that failed and what it printed last, exit 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-llama-cpp-bin-"));
    for (const name of ["llama-bench", "llama-batched-bench", "llama-server"]) {
      writeFileSync(
        join(dir, name),
        "#!/bin/sh\necho loading >&2\necho 'error: unable to load model' >&2\nexit 1\n",
      );
      chmodSync(join(dir, name), 0o755);
    }
    const r = await vellumBench("compare", "--model", bundledModelPath, "--llama-cpp", dir, "--prompt", "16");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^vellum: ${dir}/llama-bench -m ${bundledModelPath} -t \\d+ -p 16 -n 0 .* failed: error: unable to load model$`,
        "m",
      ),
    );
  });
});

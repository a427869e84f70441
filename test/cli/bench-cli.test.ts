import { describe, expect, it } from "vitest";
import { registerBench } from "../../src/cli/bench.js";
import { runVellum } from "./in-process.js";

/** Parses `vellum bench ARGS` in-process. */
const vellumBench = (...args: string[]) => runVellum([registerBench], ["bench", ...args]);

const benches = [
  "probe",
  "latency",
  "batch-scaling",
  "llama-cpp-compare",
  "batching",
  "load-model",
  "allocate-slots",
  "serve",
  "simulate-vs-measured",
];

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
      [["llama-cpp-compare", ...model, "--peer-threads", "1,0"], /--peer-threads.*'1,0' is invalid/],
      [["llama-cpp-compare", ...model], /required option '--llama-bench/],
      [
        ["llama-cpp-compare", ...model, "--llama-bench", "/no/llama-bench"],
        /--llama-bench \/no\/llama-bench: no such file/,
      ],
      [["batching", ...model, "--backend", "gpu"], /--backend.*'gpu' is invalid.*native, reference/],
      [["batching", ...model, "--repeat", "0"], /--repeat.*'0' is invalid/],
      [["serve", "--kv-cache-memory", "lots"], /--kv-cache-memory.*'lots' is invalid/],
      [["simulate-vs-measured", ...model, "--num-prompts", "x"], /--num-prompts.*'x' is invalid/],
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

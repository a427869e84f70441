/**
 * llama.cpp's own benchmarks, run as child processes and read from their machine-readable output:
 * `llama-bench -o json` (prefill and single-stream decode) and `llama-batched-bench --output-format jsonl`
 * (many sequences decoding together).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { InputError } from "../../model/errors.js";

/** A binary's stdout; a failure names the command and the last line it printed on stderr. */
async function stdoutOf(binary: string, args: string[]): Promise<string> {
  try {
    return (await promisify(execFile)(binary, args, { maxBuffer: 16 * 2 ** 20 })).stdout;
  } catch (err) {
    const { stderr, message } = err as { stderr?: string; message: string };
    const why = stderr?.trim().split("\n").pop() || message;
    throw new InputError(`${binary} ${args.join(" ")} failed: ${why}`);
  }
}

/** The mean tokens/s of the one test a `llama-bench -o json` run was asked for. */
export function parseLlamaBenchJson(stdout: string): number {
  const tests = JSON.parse(stdout) as { avg_ts?: unknown }[];
  if (!Array.isArray(tests) || tests.length !== 1 || typeof tests[0].avg_ts !== "number")
    throw new Error(`llama-bench: expected one test with avg_ts in its JSON, got ${stdout.slice(0, 200)}`);
  return tests[0].avg_ts;
}

/** One line of `llama-batched-bench --output-format jsonl`: a (prompt, generated, parallel) setting. */
export interface BatchedBenchRow {
  pp: number;
  tg: number;
  pl: number;
  /** Generated tokens/s over all `pl` sequences together. */
  speed_tg: number;
}

/** The result lines of a `llama-batched-bench --output-format jsonl` run (its other output is on stderr). */
export function parseBatchedBenchJsonl(stdout: string): BatchedBenchRow[] {
  const rows = stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as BatchedBenchRow);
  if (rows.length === 0) throw new Error(`llama-batched-bench printed no results: ${stdout.slice(0, 200)}`);
  return rows;
}

export interface LlamaRun {
  model: string;
  threads: number;
}

/** tokens/s of one llama-bench test: `-p N -n 0` is prefill, `-p 0 -n N -d D` decode after D tokens. */
export async function llamaBenchSpeed(binary: string, run: LlamaRun, test: string[]): Promise<number> {
  const args = ["-m", run.model, "-t", String(run.threads), ...test, "-r", "1", "-o", "json"];
  return parseLlamaBenchJson(await stdoutOf(binary, args));
}

/**
 * Decode tokens/s of `parallel` sequences together, each after a `context`-token prompt (shared and copied to
 * every sequence, -pps, so the prompt is computed once), with flash attention as llama-server runs it.
 */
export async function batchedBenchSpeed(
  binary: string,
  run: LlamaRun,
  { parallel, context, steps }: { parallel: number; context: number; steps: number },
): Promise<number> {
  // Each sequence gets its own slice of the context: context + steps, rounded up as llama.cpp pads it.
  const perSequence = Math.ceil((context + steps) / 256) * 256;
  const threads = String(run.threads);
  const args = [
    ...["-m", run.model, "-t", threads, "-tb", threads, "-fa", "on", "-pps"],
    ...["-c", String(parallel * perSequence), "-npp", String(context), "-ntg", String(steps)],
    ...["-npl", String(parallel), "--output-format", "jsonl"],
  ];
  const [row] = parseBatchedBenchJsonl(await stdoutOf(binary, args));
  return row.speed_tg;
}

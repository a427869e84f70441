/**
 * The option helpers every command uses. A flag's value is checked while commander parses it, so a bad value
 * prints one line naming the flag ("option '--threads <n>' argument 'x' is invalid. …") and exits 1.
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { kvCacheDtypes } from "../backend/backend.js";
import { kernelPathNames } from "../backend/native/addon.js";
import { InputError } from "../model/errors.js";
import { hardwareNames } from "../sim/hardware.js";
import { kvDtypes, weightDtypes } from "../sim/types.js";
import { parseByteSize } from "../util/byte-size.js";
import { chatDefaults } from "../workload/chat.js";
import { datasetNames } from "../workload/dataset.js";

/** Parses a numeric flag: any number, or an integer of at least `min`. */
export function numberOption(integer = false, min = Number.NEGATIVE_INFINITY) {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
      const what = integer ? "an integer" : "a number";
      throw new InvalidArgumentError(`expected ${what}${min > Number.NEGATIVE_INFINITY ? ` ≥ ${min}` : ""}`);
    }
    return n;
  };
}

/** A positive integer flag (threads, lengths, counts). */
export const positiveInteger = numberOption(true, 1);

/** A TCP port: 0 (any free one) to 65535. */
export function portOption(value: string): number {
  const port = Number(value);
  if (value.trim() === "" || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError("expected a port number from 0 to 65535");
  }
  return port;
}

/** Parses a comma-separated list ("1,2,4"), each item with `parse`. */
export function listOption<T>(parse: (value: string) => T) {
  return (value: string) => value.split(",").map((item) => parse(item));
}

/** A memory size flag ("2GB", "512MiB") as bytes; `defaultSize` is shown in the help as written. */
export function byteSizeOption(flags: string, description: string, defaultSize?: string): Option {
  const option = new Option(flags, description).argParser((value: string) => {
    try {
      return parseByteSize(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  });
  return defaultSize === undefined ? option : option.default(parseByteSize(defaultSize), defaultSize);
}

/**
 * Checks a flag's value against its allowed list when the command runs, as an InputError. Only for `plan`'s and
 * `simulate`'s --weight-dtype and --kv-dtype, whose message test/cli/plan-cli.test.ts keeps; every other list of
 * values is commander's `Option.choices`, checked while parsing.
 */
export function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T))
    throw new InputError(`${flag} must be one of ${allowed.join(", ")}, got "${value}"`);
  return value as T;
}

/** --backend; `defaultName` where a command has one, else native when the addon is built. */
export function backendOption(defaultName?: "native" | "reference"): Option {
  const option = new Option(
    "--backend <name>",
    `native (C++ kernels) or reference (pure TypeScript)${defaultName ? "" : "; default: native when built"}`,
  ).choices(["native", "reference"]);
  return defaultName ? option.default(defaultName) : option;
}

/**
 * --threads of the native backend. Its default is the machine's physical cores: `cores` where the command needs
 * the number, else left to the backend.
 */
export function threadsOption(cores?: number): Option {
  const description = "compute threads of the native backend";
  return cores === undefined
    ? new Option("--threads <n>", `${description} (default: physical cores)`).argParser(positiveInteger)
    : new Option("--threads <n>", description).argParser(positiveInteger).default(cores, "physical cores");
}

/** --kernels: a native kernel path other than the best this CPU runs (to measure or check another path). */
export function kernelsOption(): Option {
  return new Option("--kernels <path>", "force a kernel path instead of the best this CPU runs").choices(
    kernelPathNames,
  );
}

/** --backend, --threads and --kernels, shared by the commands that run a model. */
export function backendOptions(command: Command): Command {
  return command.addOption(backendOption()).addOption(threadsOption()).addOption(kernelsOption());
}

/** --model and --tokenizer, shared by the commands that load one model. */
export function modelOptions(command: Command): Command {
  return command
    .option(
      "--model <path|ref>",
      "GGUF file, Hugging Face directory, llama2.c .bin, or hf:ORG/REPO[:QUANT] from the Hub (default: the bundled demo model)",
    )
    .option("--tokenizer <path>", "tokenizer file for formats that keep it apart (llama2.c tokenizer.bin)");
}

/** The sampling flags of `generate` and `chat` (--max-tokens is each command's own: their defaults differ). */
export function samplingOptions(command: Command): Command {
  return command
    .option("--temperature <t>", "sampling temperature (0 = greedy)", numberOption(), 0.8)
    .option("--top-p <p>", "nucleus sampling mass", numberOption(), 0.95)
    .option("--top-k <k>", "keep the k most likely tokens (0 = off)", numberOption(true), 40)
    .option("--min-p <p>", "drop tokens below p × the top probability", numberOption(), 0)
    .option("--seed <s>", "seed for reproducible sampling", numberOption(true));
}

/** --kv-cache-dtype, shared by the commands that build an engine; commander rejects other values, naming the flag. */
export function kvCacheDtypeOption(): Option {
  return new Option(
    "--kv-cache-dtype <dtype>",
    "element type of the cached K and V: f16 holds twice the tokens in the same memory, rounding K/V to f16",
  )
    .choices(kvCacheDtypes)
    .default("f32");
}

/** The model, hardware and dtype flags that `plan` and `simulate` share. */
export function modelHardwareOptions(command: Command): Command {
  return command
    .requiredOption(
      "--model <name|path>",
      "a shape from profiles/models.json (llama-2-7b, …) or a model path / config.json",
    )
    .option("--tokenizer <path>", "tokenizer.bin of a llama2.c model given as PATH")
    .requiredOption("--hardware <name>", `one of ${hardwareNames().join(", ")}`)
    .option("--weight-dtype <type>", weightDtypes.join(", "), "fp16")
    .option("--kv-dtype <type>", kvDtypes.join(", "), "fp16")
    .option("--max-model-len <n>", "longest request (default: the model's context length)", positiveInteger);
}

/** The workload flags of `bench serve`, `simulate` and `bench simulate-vs-measured` (src/workload/workload.ts). */
export function addWorkloadOptions(command: Command): Command {
  return command
    .option("--dataset <name>", datasetNames.join(", "), "random")
    .option("--dataset-path <file>", "sharegpt: a local ShareGPT-format JSON file")
    .option("--num-prompts <n>", "requests to send", numberOption(true), 200)
    .option(
      "--input-len <n>",
      "random, prefix-shared: prompt tokens (after the prefix); chat: tokens of each user message",
      numberOption(true),
      1024,
    )
    .option(
      "--output-len <n>",
      "random, prefix-shared: output tokens; chat: tokens of each reply",
      numberOption(true),
      128,
    )
    .option("--range-ratio <r>", "lengths uniform in L·(1 ± r)", numberOption(), 0)
    .option(
      "--prefix-len <n>",
      "prefix-shared: tokens of the prefix every prompt shares; chat: of each system prompt",
      numberOption(true),
      256,
    )
    .option(
      "--sharegpt-output-len <n>",
      "sharegpt: output tokens instead of each reply's length",
      numberOption(true),
    )
    .option(
      "--system-prompts <n>",
      `chat: distinct system prompts of --prefix-len tokens (default ${chatDefaults.systemPrompts})`,
      positiveInteger,
    )
    .option("--turns <n>", `chat: mean turns per session (default ${chatDefaults.turns})`, positiveInteger)
    .option(
      "--think-time <s>",
      `chat: least seconds between a session's turns (default ${chatDefaults.thinkTime})`,
      numberOption(false, 0),
    )
    .option("--vocab-size <n>", "random token ids are drawn below this", numberOption(true), 500)
    .option("--request-rate <r>", "requests per second, or inf to send all at once", "inf")
    .option("--burstiness <b>", "gamma shape of the gaps: 1 = Poisson, < 1 burstier", numberOption(), 1)
    .option("--max-concurrency <n>", "most requests in flight", numberOption(true))
    .option("--seed <n>", "seed of the workload", numberOption(true), 0)
    .option("--goodput <slo...>", "service-level objectives, e.g. ttft:500 tpot:50 e2el:5000 (ms)")
    .option("--result-json <file>", "write the results as JSON");
}

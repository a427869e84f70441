import { type Command, InvalidArgumentError, Option } from "commander";
import { kvCacheDtypes } from "../core/kv-cache-sizing.js";
import { InputError } from "../model/errors.js";

/**
 * Wraps a command's action so that a user's mistake (bad file, bad flag value) prints one line naming the
 * problem and exits 1 — never a stack trace. Set VELLUM_DEBUG=1 to see the stack of an unexpected error.
 */
export function runAction<A extends unknown[]>(action: (...args: A) => Promise<void> | void) {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const expected = err instanceof InputError || err instanceof RangeError;
      process.stderr.write(`vellum: ${expected ? "" : "error: "}${message}\n`);
      if (!expected && process.env.VELLUM_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
      process.exitCode = 1;
    }
  };
}

/** Parses a numeric flag; commander prints the flag's name with the message when the value is not a number. */
export function numberOption(integer = false) {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`expected ${integer ? "an integer" : "a number"}`);
    }
    return n;
  };
}

/** --backend and --threads, shared by the commands that run a model. */
export function backendOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        "--backend <name>",
        "native (C++ kernels) or reference (pure TypeScript); default: native when built",
      ).choices(["native", "reference"]),
    )
    .option(
      "--threads <n>",
      "compute threads of the native backend (default: physical cores)",
      numberOption(true),
    );
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

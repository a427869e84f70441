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

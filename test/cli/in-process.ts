import { Command, CommanderError } from "commander";
import { vi } from "vitest";

/**
 * Runs `vellum ARGS` in-process with the commands `register` adds; returns the exit code (commander's for a
 * parse error or --help, else the one the action set) and what was written to stdout and stderr.
 */
export async function runVellum(register: ((program: Command) => void)[], args: string[]) {
  const program = new Command("vellum").exitOverride();
  for (const add of register) add(program);
  let stdout = "";
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  process.exitCode = undefined;
  let code: number | string = 0;
  try {
    await program.parseAsync(args, { from: "user" });
    code = process.exitCode ?? 0;
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    code = err.exitCode;
  } finally {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  }
  return { code, stdout, stderr };
}

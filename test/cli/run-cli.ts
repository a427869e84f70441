import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const cli = join(import.meta.dirname, "..", "..", "bin", "vellum.js");

/** Runs the built CLI as a child process with `env`; returns its exit code and output (never throws). */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = process.env) {
  try {
    const { stdout, stderr } = await run("node", [cli, ...args], { timeout: 60_000, env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

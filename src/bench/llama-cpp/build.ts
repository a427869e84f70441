/**
 * Builds the native llama.cpp that `bench compare` measures vellum against, from the very source node-llama-cpp
 * ships as a git bundle (node-llama-cpp's own prebuilt binary is generic, several times slower, and serves the
 * correctness tests only). CMake Release with -DGGML_NATIVE=ON (-march=native); the UI options off so that nothing
 * is downloaded. Everything happens outside the repository, in DIR/src and DIR/build.
 * Usage: vellum bench build-llama-cpp [--dir DIR] [--configure-only]
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { InputError } from "../../model/errors.js";

export interface BuildLlamaCppOptions {
  /** Where the source (DIR/src) and the build (DIR/build) go. */
  dir: string;
  /** Clone and configure only: what a test can afford (the build takes 15–20 minutes on 2 cores). */
  configureOnly?: boolean;
}

export const defaultLlamaCppDir = () => join(tmpdir(), "vellum-llama-cpp");

/** The binaries `bench compare` runs. */
export const llamaCppTargets = ["llama-bench", "llama-batched-bench", "llama-server"] as const;

const cmakeOptions = [
  "-DCMAKE_BUILD_TYPE=Release",
  "-DGGML_NATIVE=ON",
  // The server's web UI is otherwise built with npm or downloaded from Hugging Face.
  "-DLLAMA_BUILD_UI=OFF",
  "-DLLAMA_USE_PREBUILT_UI=OFF",
  "-DLLAMA_BUILD_TESTS=OFF",
  "-DLLAMA_BUILD_EXAMPLES=OFF",
];

/** node-llama-cpp's git bundle of the llama.cpp source its binaries were built from. */
function bundlePath(): string {
  const bundle = fileURLToPath(
    new URL("../../../node_modules/node-llama-cpp/llama/gitRelease.bundle", import.meta.url),
  );
  if (!existsSync(bundle))
    throw new InputError(`${bundle}: no such file (node-llama-cpp ships llama.cpp's source there)`);
  return bundle;
}

/** A tool's stdout, or a clear error when it is not installed. */
async function output(tool: string, args: string[]): Promise<string> {
  try {
    return (await promisify(execFile)(tool, args)).stdout.trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new InputError(`build-llama-cpp needs ${tool}, and there is no ${tool} on PATH`);
    throw new InputError(`${tool} ${args.join(" ")} failed: ${(err as Error).message.trim()}`);
  }
}

/** Runs a tool with its output on stderr (stdout carries only the result), failing clearly on a non-zero exit. */
function run(tool: string, args: string[]): Promise<void> {
  process.stderr.write(`$ ${tool} ${args.join(" ")}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ["ignore", process.stderr, process.stderr] });
    child.once("error", (err) => reject(new InputError(`${tool} ${args[0]}: ${(err as Error).message}`)));
    child.once("exit", (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new InputError(
            `${tool} ${args.join(" ")} failed (${signal ?? `exit code ${code}`}); its output is above`,
          ),
        );
    });
  });
}

/** Clones (unless DIR/src already holds the bundle's commit), configures, builds; returns the bin directory. */
export async function buildLlamaCpp({ dir, configureOnly }: BuildLlamaCppOptions): Promise<string> {
  await output("git", ["--version"]);
  const bundle = bundlePath();
  const src = join(dir, "src");
  const build = join(dir, "build");
  const commit = (await output("git", ["bundle", "list-heads", bundle, "HEAD"])).split(/\s/)[0];
  const cloned = existsSync(src);
  if (cloned) {
    const head = await output("git", ["-C", src, "rev-parse", "HEAD"]);
    if (head !== commit)
      throw new InputError(
        `${src} holds llama.cpp ${head}, the bundle ${commit}: remove it or give another --dir`,
      );
  }
  await output("cmake", ["--version"]);
  if (cloned) process.stderr.write(`${src} already holds llama.cpp ${commit.slice(0, 12)}\n`);
  else await run("git", ["-c", "advice.detachedHead=false", "clone", "-q", bundle, src]);
  await run("cmake", ["-S", src, "-B", build, ...cmakeOptions]);
  if (!configureOnly) {
    const jobs = String(availableParallelism());
    await run("cmake", ["--build", build, "--config", "Release", "-j", jobs, "--target", ...llamaCppTargets]);
  }
  return join(build, "bin");
}

/** Prints the bin directory alone on stdout (the progress goes to stderr), for `--llama-cpp "$(…)"`. */
export async function runBuildLlamaCpp(opts: BuildLlamaCppOptions) {
  const bin = await buildLlamaCpp(opts);
  if (opts.configureOnly) {
    process.stderr.write(
      `configured ${dirname(bin)}; the build would have put bench compare's --llama-cpp at:\n`,
    );
  } else {
    process.stderr.write("built; give bench compare this directory as --llama-cpp:\n");
  }
  process.stdout.write(`${bin}\n`);
}

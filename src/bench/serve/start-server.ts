import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { KvCacheDtype } from "../../backend/backend.js";
import type { KernelPath } from "../../backend/native/addon.js";
import type { BackendName } from "../../backend/native/choose-backend.js";
import { InputError } from "../../model/errors.js";
import type { ServeSettings } from "../../workload/compare.js";

/** What a server started for a comparison runs. */
export interface ServerLaunch {
  modelPath: string;
  tokenizer?: string;
  settings: ServeSettings;
  /** Default: native when the addon loads, else reference. */
  backend?: BackendName;
  /** The native backend's threads (default: physical cores). */
  threads?: number;
  /** The native backend's kernel path (default: the best this CPU runs). */
  kernels?: KernelPath;
  kvCacheBytes?: number;
  kvCacheDtype?: KvCacheDtype;
  maxNumSeqs?: number;
  maxModelLen?: number;
  /** Where the server appends every engine step as a JSON line (`vellum serve --step-log`). */
  stepLog?: string;
}

export interface StartedServer {
  baseUrl: string;
  /** The server's process id (for reading its memory use). */
  pid: number;
  stop(): Promise<void>;
}

const startTimeoutMs = 120_000;

/**
 * Starts `vellum serve` with the launch's settings on a free port and waits for its "serving … at URL" log line, then
 * for its KV cache to be resident: a benchmark measures the server in its steady state, not its first second.
 */
export function startServer(launch: ServerLaunch): Promise<StartedServer> {
  const cli = fileURLToPath(new URL("../../../bin/vellum.js", import.meta.url));
  const flags = [
    "serve",
    "--model",
    launch.modelPath,
    ...(launch.tokenizer ? ["--tokenizer", launch.tokenizer] : []),
    "--port",
    "0",
    "--kv-allocation",
    launch.settings.kvAllocation,
    "--batching",
    launch.settings.batching,
    ...(launch.settings.prefixCaching ? [] : ["--no-enable-prefix-caching"]),
    ...(launch.backend ? ["--backend", launch.backend] : []),
    ...(launch.threads ? ["--threads", String(launch.threads)] : []),
    ...(launch.kernels ? ["--kernels", launch.kernels] : []),
    ...(launch.kvCacheBytes ? ["--kv-cache-memory", String(launch.kvCacheBytes)] : []),
    ...(launch.kvCacheDtype ? ["--kv-cache-dtype", launch.kvCacheDtype] : []),
    ...(launch.maxNumSeqs ? ["--max-num-seqs", String(launch.maxNumSeqs)] : []),
    ...(launch.maxModelLen ? ["--max-model-len", String(launch.maxModelLen)] : []),
    ...(launch.stepLog ? ["--step-log", launch.stepLog] : []),
  ];
  const child = spawn(process.execPath, [cli, ...flags], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      child.kill();
      const detail = stderr.trim().split("\n").pop();
      reject(
        new InputError(
          `could not start a vellum server for ${launch.modelPath}: ${why}${detail ? `: ${detail}` : ""}`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`no answer in ${startTimeoutMs / 1000} s`), startTimeoutMs);
    let stdout = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
      const m = / at (http:\/\/[^\s"]+)\/v1/.exec(stdout);
      if (!m || !stdout.includes("KV cache resident")) return;
      clearTimeout(timer);
      resolve({ baseUrl: m[1], pid: child.pid as number, stop: () => stopChild(child) });
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(`it exited with code ${code}`);
    });
  });
}

/** SIGTERM: the server drains (nothing is running once its benchmark is over) and exits. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

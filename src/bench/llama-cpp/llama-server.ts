import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { InputError } from "../../model/errors.js";
import type { Tokenizer } from "../../model/tokenizer/tokenizer.js";
import type { StartedServer } from "../serve/start-server.js";

export interface LlamaServerLaunch {
  binary: string;
  model: string;
  threads: number;
  /** Slots: sequences decoded together (-np). */
  parallel: number;
  /** Context of each slot; the server's -c is this × parallel. */
  contextPerSequence: number;
  /** Token ids the server must never sample (see partialUtf8Tokens). */
  banned: number[];
}

/**
 * The tokens whose text alone is not whole UTF-8 characters (byte tokens ≥ 0x80, byte-level BPE pieces of a
 * character). llama-server fails a stream whose text holds a broken UTF-8 sequence, which a synthetic model's
 * gibberish often does; banning these keeps every stream whole and changes nothing of the work per token.
 */
export function partialUtf8Tokens(tokenizer: Tokenizer, vocabSize: number): number[] {
  const banned: number[] = [];
  for (let id = 0; id < vocabSize; id++)
    if (tokenizer.decode([id]).includes("\uFFFD") && !tokenizer.idToToken(id).includes("\uFFFD"))
      banned.push(id);
  return banned;
}

const startTimeoutMs = 120_000;

/** A port nobody listens on now (llama-server cannot be told to pick one and report it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts `llama-server -np N -fa on` on a free port, with -t and -tb both at `threads`, and waits until /health
 * answers 200 (it answers 503 while loading).
 */
export async function startLlamaServer(l: LlamaServerLaunch): Promise<StartedServer> {
  const port = await freePort();
  const threads = String(l.threads);
  const args = [
    ...["-m", l.model, "--host", "127.0.0.1", "--port", String(port)],
    ...["-t", threads, "-tb", threads, "-np", String(l.parallel), "-fa", "on"],
    ...["-c", String(l.parallel * l.contextPerSequence)],
    ...l.banned.flatMap((id) => ["--logit-bias", `${id}-inf`]),
  ];
  const child = spawn(l.binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited = false;
  // "close" follows both an exit and a failure to start (an "error" event, whose message is the detail).
  child.once("error", (err) => {
    stderr = err.message;
  });
  const exit = new Promise<void>((resolve) =>
    child.once("close", () => {
      exited = true;
      resolve();
    }),
  );
  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    await exit;
  };
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + startTimeoutMs;
  while (!exited && performance.now() < deadline) {
    const ok = await fetch(`${baseUrl}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { baseUrl, pid: child.pid as number, stop };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await stop();
  const detail = stderr.trim().split("\n").pop();
  throw new InputError(
    `could not start ${l.binary}: ${exited ? "it exited" : `no answer in ${startTimeoutMs / 1000} s`}${detail ? `: ${detail}` : ""}`,
  );
}

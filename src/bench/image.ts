/**
 * The deployment image end to end: builds deploy/Dockerfile, starts a container, times it to /live and /health,
 * serves one completion from it, and times its drain on `docker stop` (SIGTERM). Needs a Docker daemon; without
 * one it says why and runs nothing.
 * Usage: vellum bench image [--tag TAG]
 */
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { InputError } from "../model/errors.js";

const exec = promisify(execFile);

export interface ImageBenchOptions {
  /** The repository root: the build context. */
  root: string;
  tag: string;
  /** Seconds the container may take to turn ready. */
  readyTimeout: number;
}

/** Why docker cannot build here (no client, no daemon), or undefined when a daemon answers. */
export async function dockerUnavailable(): Promise<string | undefined> {
  try {
    await exec("docker", ["version", "--format", "{{.Server.Version}}"], { timeout: 20_000 });
    return undefined;
  } catch (err) {
    const e = err as { code?: string | number; stderr?: string };
    if (e.code === "ENOENT") return "there is no docker client on PATH";
    const said = (e.stderr ?? "").trim().split("\n").at(-1) ?? "";
    return `the docker client found no daemon to build with${said ? ` (${said})` : ""}`;
  }
}

export async function runImageBench({ root, tag, readyTimeout }: ImageBenchOptions) {
  const why = await dockerUnavailable();
  if (why !== undefined) throw new InputError(`bench image did not run: ${why}`);

  const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);
  let start = performance.now();
  await run("docker", ["build", "-f", join(root, "deploy", "Dockerfile"), "-t", tag, root]);
  console.log(`built ${tag} in ${seconds(start)} s`);

  start = performance.now();
  const { stdout: id } = await exec("docker", ["run", "-d", "--rm", "-p", "127.0.0.1::8000", tag]);
  const container = id.trim();
  try {
    const { stdout: address } = await exec("docker", ["port", container, "8000/tcp"]);
    const url = `http://${address.trim().split("\n")[0]}`;
    const live = await until(`${url}/live`, readyTimeout);
    const ready = await until(`${url}/health`, readyTimeout);
    console.log(
      `container ${container.slice(0, 12)}: /live 200 after ${live} s, /health 200 after ${ready} s`,
    );

    start = performance.now();
    const res = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "kjv-demo", prompt: "In the beginning", max_tokens: 16, temperature: 0 }),
    });
    const body = (await res.json()) as { choices?: { text: string }[]; error?: { message: string } };
    if (!res.ok) throw new Error(`the completion failed: ${res.status} ${body.error?.message}`);
    console.log(`one completion in ${seconds(start)} s: ${JSON.stringify(body.choices?.[0].text)}`);
  } finally {
    start = performance.now();
    await exec("docker", ["stop", "--time", "30", container]).catch(() => {});
    console.log(`docker stop (SIGTERM, drain, exit) took ${seconds(start)} s`);
  }
}

/** Polls `url` until it answers 200; returns the seconds that took. */
async function until(url: string, timeoutS: number): Promise<string> {
  const start = performance.now();
  for (;;) {
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    const elapsed = (performance.now() - start) / 1000;
    if (status === 200) return elapsed.toFixed(1);
    if (elapsed > timeoutS)
      throw new Error(`${url} did not answer 200 within ${timeoutS} s (last: ${status})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Runs a command with its output shown; rejects on a non-zero exit. */
function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args[0]} exited with ${code}`)),
    );
  });
}

import { execFile, execFileSync } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
const cli = join(import.meta.dirname, "..", "..", "bin", "vellum.js");
/** A tmux server of our own, so that tests neither see nor touch anyone else's sessions. */
const socket = `vellum-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

export const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"]);
    return true;
  } catch {
    console.warn("[skip] CLI tests in a pseudo-terminal: tmux not found");
    return false;
  }
})();

/** Runs a tmux command on our server; resolves with its stdout. */
export async function tmux(args: string[]): Promise<string> {
  return (await execFileAsync("tmux", ["-L", socket, ...args])).stdout;
}

/**
 * Runs `vellum ARGS` in a detached tmux pane (a terminal), which stays after the process exits and then shows
 * "exited with N" (tmux's own #{pane_dead_status} is not always set by the time the pane is dead).
 */
export async function startVellum(session: string, ...args: string[]): Promise<void> {
  const command = `${["node", cli, ...args].join(" ")}; echo "exited with $?"`;
  await tmux(["new-session", "-d", "-s", session, "-x", "250", "-y", "200", command]);
  await tmux(["set-option", "-w", "-t", session, "remain-on-exit", "on"]);
}

/** The pane's whole text, wrapped lines joined. */
export function pane(session: string): Promise<string> {
  return tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", session]);
}

/** Types `text` as it is, then Enter. */
export async function typeLine(session: string, text: string): Promise<void> {
  await tmux(["send-keys", "-t", session, "-l", text]);
  await tmux(["send-keys", "-t", session, "Enter"]);
}

/** Stops every pane this process started. */
export async function killTmux(): Promise<void> {
  await tmux(["kill-server"]).catch(() => undefined);
}

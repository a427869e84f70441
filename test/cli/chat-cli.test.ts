import { execFile, execFileSync } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { LLM } from "../../src/engine/llm.js";
import { type ChatMessage, encodeChat } from "../../src/model/chat-template.js";
import { loadModel } from "../../src/model/load.js";
import { waitFor } from "../helpers.js";

const cli = join(import.meta.dirname, "..", "..", "bin", "vellum.js");
/** A tmux server of our own, so that the test neither sees nor touches anyone else's sessions. */
const socket = `vellum-chat-test-${process.pid}`;
const execFileAsync = promisify(execFile);
/** Runs a tmux command on our server; resolves with its stdout. */
const tmux = async (args: string[]) => (await execFileAsync("tmux", ["-L", socket, ...args])).stdout;
const maxTokens = 20;

let hasTmux = true;
try {
  execFileSync("tmux", ["-V"]);
} catch {
  hasTmux = false;
  console.warn("[skip] vellum chat in a pseudo-terminal: tmux not found");
}

/**
 * Starts `vellum chat ARGS` in a detached tmux pane, which stays after the process exits and then shows
 * "exited with N" (tmux's own #{pane_dead_status} is not always set by the time the pane is dead).
 */
async function startChat(session: string, ...args: string[]) {
  const command = `${["node", cli, "chat", ...args].join(" ")}; echo "exited with $?"`;
  await tmux(["new-session", "-d", "-s", session, "-x", "250", "-y", "200", command]);
  await tmux(["set-option", "-w", "-t", session, "remain-on-exit", "on"]);
}

/** The pane's whole text, wrapped lines joined. */
async function pane(session: string): Promise<string> {
  return tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", session]);
}

/** Lines of the pane that are prompts (`>>> ` and what was typed after it). */
async function prompts(session: string): Promise<number> {
  return (await pane(session)).split("\n").filter((line) => line.startsWith(">>>")).length;
}

/** Types `text` and Enter, then waits for the next prompt; returns what was printed in between. */
async function say(session: string, text: string): Promise<string> {
  const before = await prompts(session);
  await tmux(["send-keys", "-t", session, "-l", text]);
  await tmux(["send-keys", "-t", session, "Enter"]);
  await waitFor(async () => (await prompts(session)) > before, 60_000);
  const lines = (await pane(session)).split("\n");
  const typed = lines.lastIndexOf(`>>> ${text}`);
  const next = lines.findIndex((line, i) => i > typed && line.startsWith(">>>"));
  return lines.slice(typed + 1, next).join("\n");
}

/** Whether the chat process has exited with status 0. */
async function exitedCleanly(session: string): Promise<boolean> {
  return (await pane(session)).includes("exited with 0");
}

/** Terminal output and the engine's text compared as words: the pane keeps no trailing spaces. */
const words = (text: string) => text.replace(/\s+/g, " ").trim();

describe.skipIf(!hasTmux)("vellum chat in a pseudo-terminal (tmux), on the bundled model", () => {
  const model = loadModel(bundledModelPath);
  const llm = LLM.fromModel(model, { numBlocks: 64 });
  /** The engine's greedy reply to a conversation, the independent expectation. */
  const offlineReply = async (messages: ChatMessage[]) => {
    const ids = encodeChat(model, messages, { addGenerationPrompt: true });
    const [result] = await llm.generate([ids], { temperature: 0, maxTokens });
    return result.outputs[0].text;
  };
  afterAll(async () => {
    await tmux(["kill-server"]).catch(() => undefined);
  });

  test("streams replies that follow the conversation; /reset forgets it; /exit ends the process", async () => {
    await startChat("main", "--temperature", "0", "--max-tokens", String(maxTokens));
    await waitFor(async () => (await prompts("main")) === 1, 60_000);
    expect(await pane("main")).toContain("/reset clears the conversation");

    const first = { role: "user", content: "Who was Moses?" };
    const second = { role: "user", content: "And what did the LORD say unto him?" };
    const firstReply = await offlineReply([first]);
    const withHistory = await offlineReply([first, { role: "assistant", content: firstReply }, second]);
    const fresh = await offlineReply([second]);
    // Otherwise the test could not tell a reset from a kept history.
    expect(words(fresh)).not.toBe(words(withHistory));

    expect(words(await say("main", first.content))).toBe(words(firstReply));
    expect(words(await say("main", second.content))).toBe(words(withHistory));
    expect(await say("main", "/reset")).toBe("(conversation cleared)");
    expect(words(await say("main", second.content))).toBe(words(fresh));

    await tmux(["send-keys", "-t", "main", "-l", "/exit"]);
    await tmux(["send-keys", "-t", "main", "Enter"]);
    await waitFor(() => exitedCleanly("main"), 10_000);
  });

  test("Ctrl-D at the prompt ends the process with status 0", async () => {
    await startChat("eof");
    await waitFor(async () => (await prompts("eof")) === 1, 60_000);
    await tmux(["send-keys", "-t", "eof", "C-d"]);
    await waitFor(() => exitedCleanly("eof"), 10_000);
  });
});

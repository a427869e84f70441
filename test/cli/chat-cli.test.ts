import { afterAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { LLM } from "../../src/engine/llm.js";
import { type ChatMessage, encodeChat } from "../../src/model/chat-template.js";
import { loadModel } from "../../src/model/load.js";
import { waitFor } from "../helpers.js";
import { hasTmux, killTmux, pane, startVellum, tmux, typeLine } from "./tmux.js";

const maxTokens = 20;

/** Lines of the pane that are prompts (`>>> ` and what was typed after it). */
async function prompts(session: string): Promise<number> {
  return (await pane(session)).split("\n").filter((line) => line.startsWith(">>>")).length;
}

/** Types `text` and Enter, then waits for the next prompt; returns what was printed in between. */
async function say(session: string, text: string): Promise<string> {
  const before = await prompts(session);
  await typeLine(session, text);
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
    const [result] = await (await llm).generate([ids], { temperature: 0, maxTokens });
    return result.outputs[0].text;
  };
  afterAll(killTmux);

  test("streams replies that follow the conversation; /reset forgets it; /exit ends the process", async () => {
    await startVellum("main", "chat", "--temperature", "0", "--max-tokens", String(maxTokens));
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

    await typeLine("main", "/exit");
    await waitFor(() => exitedCleanly("main"), 10_000);
  });

  test("Ctrl-D at the prompt ends the process with status 0", async () => {
    await startVellum("eof", "chat");
    await waitFor(async () => (await prompts("eof")) === 1, 60_000);
    await tmux(["send-keys", "-t", "eof", "C-d"]);
    await waitFor(() => exitedCleanly("eof"), 10_000);
  });
});

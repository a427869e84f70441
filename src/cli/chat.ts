import { createInterface } from "node:readline";
import type { Command } from "commander";
import type { KvCacheDtype } from "../backend/backend.js";
import type { KernelPath } from "../backend/native/addon.js";
import { samplingParams } from "../engine/api.js";
import type { AsyncEngine } from "../engine/async-engine.js";
import { type ChatMessage, encodeChat } from "../model/chat-template.js";
import { resolveModel } from "./default-model.js";
import { oneSequenceEngine } from "./one-sequence-engine.js";
import {
  backendOptions,
  kvCacheDtypeOption,
  modelOptions,
  numberOption,
  samplingOptions,
} from "./options.js";
import { loadModelShowingProgress } from "./progress.js";
import { runAction } from "./run-action.js";

interface ChatOptions {
  model?: string;
  tokenizer?: string;
  system?: string;
  maxTokens?: number;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  seed?: number;
  backend?: "native" | "reference";
  threads?: number;
  kernels?: KernelPath;
  kvCacheDtype: KvCacheDtype;
}

const help = "/reset clears the conversation, /exit (or Ctrl-D) quits, Ctrl-C stops a reply";

export function registerChat(program: Command) {
  samplingOptions(modelOptions(backendOptions(program.command("chat"))))
    .description("chat with a model in the terminal: keeps the conversation, streams each reply")
    .option("--system <text>", "system prompt, kept across /reset")
    .option(
      "--max-tokens <n>",
      "most tokens per reply (default: up to the end of the context)",
      numberOption(true, 1),
    )
    .addOption(kvCacheDtypeOption())
    .action(runAction(chat));
}

async function chat(opts: ChatOptions) {
  const model = loadModelShowingProgress(await resolveModel(opts.model), { tokenizer: opts.tokenizer });
  const { engine } = await oneSequenceEngine(model, opts);
  const start: ChatMessage[] = opts.system === undefined ? [] : [{ role: "system", content: opts.system }];
  let history = start;
  let reply: AbortController | undefined;
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: ">>> " });
  rl.on("SIGINT", () => (reply ? reply.abort() : rl.close()));
  process.stdout.write(`vellum chat: ${model.name}; ${help}\n`);
  rl.prompt();
  for await (const line of rl) {
    const text = line.trim();
    if (text === "/exit") break;
    if (text === "/reset") {
      history = start;
      process.stdout.write("(conversation cleared)\n");
    } else if (text.startsWith("/")) {
      process.stdout.write(`unknown command ${text}: ${help}\n`);
    } else if (text !== "") {
      const turn = [...history, { role: "user", content: line }];
      reply = new AbortController();
      const answer = await streamReply(
        engine,
        encodeChat(model, turn, { addGenerationPrompt: true }),
        opts,
        reply,
      );
      reply = undefined;
      if (answer !== undefined) history = [...turn, { role: "assistant", content: answer }];
    }
    rl.prompt();
  }
  rl.close();
}

/** Streams one reply to stdout; returns its text, or undefined when the conversation no longer fits. */
async function streamReply(
  engine: AsyncEngine,
  promptIds: number[],
  opts: ChatOptions,
  reply: AbortController,
): Promise<string | undefined> {
  const room = engine.maxModelLen - promptIds.length;
  if (room < 1) {
    process.stdout.write(
      `(the conversation is ${promptIds.length} tokens, the model's context ${engine.maxModelLen}: /reset to start over)\n`,
    );
    return undefined;
  }
  const params = samplingParams({
    maxTokens: Math.min(opts.maxTokens ?? room, room),
    temperature: opts.temperature,
    topP: opts.topP,
    topK: opts.topK,
    minP: opts.minP,
    seed: opts.seed,
  });
  let text = "";
  for await (const delta of engine.generate(promptIds, params, { signal: reply.signal })) {
    text += delta.text;
    process.stdout.write(delta.text);
  }
  process.stdout.write("\n");
  return text;
}

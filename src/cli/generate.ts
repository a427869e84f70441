import type { Command } from "commander";
import type { KvCacheDtype } from "../backend/backend.js";
import type { KernelPath } from "../backend/native/addon.js";
import { samplingParams } from "../engine/api.js";
import type { FinishReason } from "../engine/stats.js";
import { encodeChat } from "../model/chat-template.js";
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

interface GenerateOptions {
  model?: string;
  tokenizer?: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  seed?: number;
  chat?: boolean;
  json?: boolean;
  backend?: "native" | "reference";
  threads?: number;
  kernels?: KernelPath;
  kvCacheDtype: KvCacheDtype;
}

export function registerGenerate(program: Command) {
  samplingOptions(modelOptions(backendOptions(program.command("generate"))))
    .description("generate a completion for one prompt, streaming it to stdout")
    .requiredOption("--prompt <text>", "the prompt")
    .option("--max-tokens <n>", "most tokens to generate", numberOption(true), 128)
    .addOption(kvCacheDtypeOption())
    .option("--chat", "render the prompt as a user message with the model's chat template")
    .option(
      "--json",
      'print one JSON object { "text", "token_ids", "prompt_token_ids", "finish_reason" } instead',
    )
    .action(runAction(generate));
}

async function generate(opts: GenerateOptions) {
  const model = loadModelShowingProgress(await resolveModel(opts.model), { tokenizer: opts.tokenizer });
  const { tokenizer } = model;
  const promptIds = opts.chat
    ? encodeChat(model, [{ role: "user", content: opts.prompt }], { addGenerationPrompt: true })
    : tokenizer.encode(opts.prompt);
  const params = samplingParams({
    maxTokens: opts.maxTokens,
    temperature: opts.temperature,
    topP: opts.topP,
    topK: opts.topK,
    minP: opts.minP,
    seed: opts.seed,
  });
  const { engine } = await oneSequenceEngine(model, opts);
  const tokenIds: number[] = [];
  let text = "";
  let finishReason: FinishReason | undefined;
  for await (const delta of engine.generate(promptIds, params)) {
    text += delta.text;
    tokenIds.push(...delta.tokenIds);
    finishReason = delta.finishReason ?? finishReason;
    if (!opts.json) process.stdout.write(delta.text);
  }
  if (opts.json) {
    const result = { text, token_ids: tokenIds, prompt_token_ids: promptIds, finish_reason: finishReason };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    process.stdout.write("\n");
  }
}

import { readFileSync } from "node:fs";
import { fileErrorText, InputError } from "../model/errors.js";
import type { WorkloadRandom } from "./random.js";

/** One prompt of a workload. Token ids are what the simulator schedules and what completions requests send. */
export interface WorkloadPrompt {
  promptTokenIds: number[];
  /** Text for endpoints that need it (chat); the dataset's own text for sharegpt. */
  promptText: string;
  /** True when the text is the real prompt and the ids only stand in for its length (sharegpt). */
  textIsPrompt: boolean;
  outputLen: number;
  /** The reply's token ids, where a later prompt repeats it (chat sessions): the simulator generates exactly these. */
  replyTokenIds?: number[];
}

/** chat: multi-turn sessions with their own send times (chat.ts); the others are prompts alone. */
export type DatasetName = "random" | "sharegpt" | "prefix-shared" | "chat";
export const datasetNames: DatasetName[] = ["random", "sharegpt", "prefix-shared", "chat"];

export interface DatasetOptions {
  dataset: Exclude<DatasetName, "chat">;
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  /** Lengths uniform in L·(1 ± rangeRatio). */
  rangeRatio: number;
  prefixLen: number;
  /** Random token ids are drawn from [3, vocabSize): 0–2 are unk/bos/eos in sentencepiece vocabularies. */
  vocabSize: number;
  /** sharegpt: a local JSON file. */
  datasetPath?: string;
  /** sharegpt: overrides each conversation's reply length. */
  sharegptOutputLen?: number;
}

const firstRandomId = 3;

export function makePrompts(o: DatasetOptions, random: WorkloadRandom): WorkloadPrompt[] {
  if (o.dataset === "sharegpt") return sharegptPrompts(o, random);
  const shared = o.dataset === "prefix-shared" ? randomIds(o.prefixLen, o.vocabSize, random) : [];
  const prompts: WorkloadPrompt[] = [];
  for (let i = 0; i < o.numPrompts; i++) {
    const ids = [...shared, ...randomIds(around(o.inputLen, o.rangeRatio, random), o.vocabSize, random)];
    prompts.push({
      promptTokenIds: ids,
      promptText: wordsFor(ids),
      textIsPrompt: false,
      outputLen: around(o.outputLen, o.rangeRatio, random),
    });
  }
  return prompts;
}

/** An integer uniform in [L(1 − r), L(1 + r)], at least 1. */
export function around(length: number, ratio: number, random: WorkloadRandom): number {
  return Math.max(1, random.int(Math.floor(length * (1 - ratio)), Math.ceil(length * (1 + ratio))));
}

export function randomIds(n: number, vocabSize: number, random: WorkloadRandom): number[] {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(random.int(firstRandomId, vocabSize - 1));
  return ids;
}

/**
 * Text stand-in for token ids, for the chat endpoint, which takes no ids: one common short word per id,
 * about one token each in most vocabularies. The server's usage reports the true count.
 */
const words = [
  "the",
  "a",
  "and",
  "of",
  "to",
  "in",
  "it",
  "was",
  "he",
  "she",
  "they",
  "day",
  "sun",
  "dog",
  "cat",
  "ran",
];
export function wordsFor(ids: readonly number[]): string {
  return ids.map((id) => words[id % words.length]).join(" ");
}

/** Characters per token, the usual rule of thumb for English, used where no tokenizer is at hand. */
const charsPerToken = 4;

interface ShareGptTurn {
  from?: unknown;
  value?: unknown;
}

/**
 * ShareGPT format: [{ conversations: [{ from: "human", value }, { from: "gpt", value }, …] }, …]. The first
 * human turn is the prompt; its reply's length (estimated at 4 characters per token) the output length.
 * Conversations are shuffled by the seed; as in vLLM, pairs with a side under 4 tokens, a prompt over 1024
 * or a total over 2048 are skipped.
 */
function sharegptPrompts(o: DatasetOptions, random: WorkloadRandom): WorkloadPrompt[] {
  const path = o.datasetPath;
  if (!path) throw new InputError("--dataset sharegpt needs --dataset-path FILE.json");
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new InputError(`${path}: cannot read as JSON: ${fileErrorText(err)}`);
  }
  if (!Array.isArray(data)) throw new InputError(`${path}: expected a JSON array of conversations`);
  const order = data.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = random.int(0, i);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const prompts: WorkloadPrompt[] = [];
  for (const index of order) {
    if (prompts.length === o.numPrompts) break;
    const turns = (data[index] as { conversations?: ShareGptTurn[] })?.conversations;
    if (!Array.isArray(turns) || turns.length < 2) continue;
    const [ask, reply] = turns;
    if (typeof ask?.value !== "string" || typeof reply?.value !== "string") continue;
    const promptLen = Math.ceil(ask.value.length / charsPerToken);
    const outputLen = o.sharegptOutputLen ?? Math.ceil(reply.value.length / charsPerToken);
    if (promptLen < 4 || outputLen < 4 || promptLen > 1024 || promptLen + outputLen > 2048) continue;
    prompts.push({
      promptTokenIds: randomIds(promptLen, o.vocabSize, random),
      promptText: ask.value,
      textIsPrompt: true,
      outputLen,
    });
  }
  if (prompts.length < o.numPrompts) {
    throw new InputError(
      `${path}: only ${prompts.length} usable conversations (first turn human, then a reply; 4–1024 prompt tokens), --num-prompts is ${o.numPrompts}`,
    );
  }
  return prompts;
}

import { around, randomIds, type WorkloadPrompt, wordsFor } from "./dataset.js";
import type { WorkloadRandom } from "./random.js";

export interface ChatOptions {
  /** Requests (turns) in all. */
  numPrompts: number;
  /** Distinct system prompts; each session opens with one of them, drawn uniformly. */
  systemPrompts: number;
  systemPromptLen: number;
  /** Tokens of each user message. */
  inputLen: number;
  /** Tokens of each reply. */
  outputLen: number;
  /** Message and reply lengths uniform in L·(1 ± rangeRatio). */
  rangeRatio: number;
  /** Mean turns per session: each session has 1 … 2·turns − 1, uniformly. */
  turns: number;
  /** Mean seconds from one turn of a session to the next (exponential). */
  thinkTime: number;
  /** Turns per second in all: sessions start as a Poisson process at requestRate ÷ turns; Infinity starts them all at 0. */
  requestRate: number;
  vocabSize: number;
}

export const chatDefaults = { systemPrompts: 16, turns: 4, thinkTime: 10 };

/**
 * A shared-prefix chat workload: sessions that open with one of a few system prompts and go on for several turns,
 * each turn's prompt repeating the whole conversation so far (system prompt, earlier messages and replies) before
 * its new message, as chat clients send it. Requests are every session's turns in send-time order.
 */
export function chatSessions(
  o: ChatOptions,
  random: WorkloadRandom,
): { prompts: WorkloadPrompt[]; sendTimes: number[] } {
  const systems = Array.from({ length: o.systemPrompts }, () =>
    randomIds(o.systemPromptLen, o.vocabSize, random),
  );
  const turns: { time: number; prompt: WorkloadPrompt }[] = [];
  let sessionStart = 0;
  while (turns.length < o.numPrompts) {
    if (Number.isFinite(o.requestRate)) sessionStart += random.gamma(1, o.turns / o.requestRate);
    const numTurns = Math.min(random.int(1, 2 * o.turns - 1), o.numPrompts - turns.length);
    let history = systems[random.int(0, o.systemPrompts - 1)];
    let time = sessionStart;
    for (let t = 0; t < numTurns; t++) {
      if (t > 0) time += random.gamma(1, o.thinkTime);
      const ids = [...history, ...randomIds(around(o.inputLen, o.rangeRatio, random), o.vocabSize, random)];
      const reply = randomIds(around(o.outputLen, o.rangeRatio, random), o.vocabSize, random);
      turns.push({
        time,
        prompt: {
          promptTokenIds: ids,
          promptText: wordsFor(ids),
          textIsPrompt: false,
          outputLen: reply.length,
          replyTokenIds: reply,
        },
      });
      history = [...ids, ...reply];
    }
  }
  turns.sort((a, b) => a.time - b.time);
  return { prompts: turns.map((t) => t.prompt), sendTimes: turns.map((t) => t.time) };
}

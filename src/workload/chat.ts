import { arrivalTimes } from "./arrivals.js";
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
  /** Least seconds from one turn of a session to its next. */
  thinkTime: number;
  /** Requests go out as `bench serve` sends them (arrivals.ts). */
  requestRate: number;
  burstiness: number;
  vocabSize: number;
}

export const chatDefaults = { systemPrompts: 16, turns: 4, thinkTime: 2 };

interface Session {
  /** The conversation so far: system prompt, then each turn's message and reply. */
  history: number[];
  turnsLeft: number;
  lastSent: number;
}

/**
 * A shared-prefix chat workload: sessions that open with one of a few system prompts and go on for several turns,
 * each turn's prompt repeating the whole conversation so far (system prompt, earlier messages and replies) before
 * its new message, as chat clients send it. Requests go out at the same rate as the other datasets'; each goes to
 * the session that has waited longest since its last turn, if that was thinkTime ago or more, else opens a new
 * session. So the rate holds from the start, and the first thinkTime seconds hold only first turns.
 */
export function chatSessions(
  o: ChatOptions,
  random: WorkloadRandom,
): { prompts: WorkloadPrompt[]; sendTimes: number[] } {
  const systems = Array.from({ length: o.systemPrompts }, () =>
    randomIds(o.systemPromptLen, o.vocabSize, random),
  );
  const sendTimes = arrivalTimes(o.numPrompts, o.requestRate, o.burstiness, random);
  // Open sessions, in the order of their last turn (sendTimes ascend): the first has waited longest.
  const open: Session[] = [];
  const prompts = sendTimes.map((time): WorkloadPrompt => {
    const session =
      open.length > 0 && time - open[0].lastSent >= o.thinkTime
        ? (open.shift() as Session)
        : {
            history: systems[random.int(0, o.systemPrompts - 1)],
            turnsLeft: random.int(1, 2 * o.turns - 1),
            lastSent: time,
          };
    const ids = [
      ...session.history,
      ...randomIds(around(o.inputLen, o.rangeRatio, random), o.vocabSize, random),
    ];
    const reply = randomIds(around(o.outputLen, o.rangeRatio, random), o.vocabSize, random);
    session.history = [...ids, ...reply];
    session.lastSent = time;
    if (--session.turnsLeft > 0) open.push(session);
    return {
      promptTokenIds: ids,
      // Built when asked for (only `bench serve`'s chat endpoint reads it): long conversations make long texts.
      get promptText() {
        return wordsFor(ids);
      },
      textIsPrompt: false,
      outputLen: reply.length,
      replyTokenIds: reply,
    };
  });
  return { prompts, sendTimes };
}

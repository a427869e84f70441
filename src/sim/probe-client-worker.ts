/**
 * The serving probe's client, on a thread of its own as `bench serve` is a process of its own: each job's
 * prompts are sent with bench serve's client, all at once or a few ahead of their first tokens, and the reply
 * says when all have streamed to the end.
 */
import { parentPort } from "node:worker_threads";
import type { WorkloadPrompt } from "../workload/dataset.js";
import type { RequestRecord } from "../workload/metrics.js";
import { sendRequest, type Target } from "../workload/openai-client.js";

export interface ClientJob {
  target: Target;
  prompts: WorkloadPrompt[];
  /** At most this many requests wait for their first token at a time (each next one is sent when one gets it). */
  awaitingFirstToken: number;
}

/** The first failure's message, if any request failed. */
export interface ClientReply {
  error?: string;
}

parentPort?.on("message", async ({ target, prompts, awaitingFirstToken }: ClientJob) => {
  const sent: Promise<RequestRecord>[] = [];
  let awaiting = 0;
  let firstTokenSeen = () => {};
  for (const prompt of prompts) {
    while (awaiting >= awaitingFirstToken) await new Promise<void>((resolve) => (firstTokenSeen = resolve));
    awaiting++;
    let seen = false;
    const firstToken = () => {
      if (seen) return;
      seen = true;
      awaiting--;
      firstTokenSeen();
    };
    sent.push(sendRequest(target, prompt, performance.now(), firstToken).finally(firstToken));
  }
  const records = await Promise.all(sent);
  const reply: ClientReply = { error: records.find((r) => !r.success)?.error };
  parentPort?.postMessage(reply);
});

/**
 * The serving probe's client, on a thread of its own as `bench serve` is a process of its own: each job's
 * prompts are sent at once with bench serve's client, and the reply says when all have streamed to the end.
 */
import { parentPort } from "node:worker_threads";
import type { WorkloadPrompt } from "../workload/dataset.js";
import { sendRequest, type Target } from "../workload/openai-client.js";

export interface ClientJob {
  target: Target;
  prompts: WorkloadPrompt[];
}

/** The first failure's message, if any request failed. */
export interface ClientReply {
  error?: string;
}

parentPort?.on("message", async ({ target, prompts }: ClientJob) => {
  const records = await Promise.all(prompts.map((prompt) => sendRequest(target, prompt, performance.now())));
  const reply: ClientReply = { error: records.find((r) => !r.success)?.error };
  parentPort?.postMessage(reply);
});

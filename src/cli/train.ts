import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { LLM } from "../engine/llm.js";
import { readTrainConfig } from "../train/train-config.js";
import { runTraining } from "../train/train-loop.js";
import { runAction } from "./run-action.js";

/** Prompts whose greedy continuations the run prints (and the model card shows). */
const samplePrompts = ["And God said", "In the beginning", "The LORD is my shepherd"];

export function registerTrain(program: Command) {
  program
    .command("train")
    .description("train a small Llama model from a config (e.g. train/kjv-demo.json) and write it as GGUF")
    .requiredOption("--config <file>", "training config (JSON)")
    .option("--fresh", "ignore an existing checkpoint and start from step 0")
    .action(
      runAction(async (opts: { config: string; fresh?: boolean }) => {
        const cfg = readTrainConfig(opts.config);
        const log = (line: string) => process.stderr.write(`${line}\n`);
        const { summary, model } = await runTraining(cfg, { resume: !opts.fresh, log });
        const llm = await LLM.fromModel(model, { backend: "reference", maxNumSeqs: samplePrompts.length });
        const outputs = await llm.generate(samplePrompts, { temperature: 0, maxTokens: 48 });
        const samples = samplePrompts.map((prompt, i) => ({
          prompt,
          continuation: outputs[i].outputs[0].text,
        }));
        const report = { ...summary, samples };
        writeFileSync(join(cfg.checkpointDir, "summary.json"), `${JSON.stringify(report, null, 2)}\n`);
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      }),
    );
}

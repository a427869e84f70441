import type { Command } from "commander";
import { hardwareProfile } from "../sim/hardware.js";
import { modelProfile } from "../sim/model-profile.js";
import { computePlan, type PlanInput } from "../sim/plan.js";
import { formatPlan } from "../sim/plan-format.js";
import { type KvDtype, kvDtypes, type WeightDtype, weightDtypes } from "../sim/types.js";
import { byteSizeOption, modelHardwareOptions, oneOf, positiveInteger } from "./options.js";
import { runAction } from "./run-action.js";

interface PlanOptions {
  model: string;
  tokenizer?: string;
  hardware: string;
  weightDtype: string;
  kvDtype: string;
  maxModelLen?: number;
  avgTokens?: number;
  contextLen?: number;
  promptLen?: number;
  blockSize: number;
  overhead: number;
  json?: boolean;
}

export function registerPlan(program: Command) {
  modelHardwareOptions(
    program
      .command("plan")
      .description("memory and roofline arithmetic of serving a model on given hardware (no model is run)"),
  )
    .option(
      "--avg-tokens <n>",
      "average tokens (prompt + output) per request, for paging (default: 512)",
      positiveInteger,
    )
    .option(
      "--context-len <n>",
      "context of the decode step whose floor is shown (default: --avg-tokens)",
      positiveInteger,
    )
    .option("--prompt-len <n>", "prompt length of the prefill shown (default: --avg-tokens)", positiveInteger)
    .option("--block-size <n>", "tokens per KV block", positiveInteger, 16)
    .addOption(
      byteSizeOption("--overhead <size>", "memory for neither weights nor KV (activations, runtime)", "2GB"),
    )
    .option("--json", "print the plan as JSON")
    .action(
      runAction((opts: PlanOptions) => {
        const input = planInput(opts);
        const plan = computePlan(input);
        process.stdout.write(
          `${opts.json ? JSON.stringify({ input: describeInput(input), plan }, null, 2) : formatPlan(input, plan)}\n`,
        );
      }),
    );
}

function planInput(opts: PlanOptions): PlanInput {
  const weightDtype = oneOf<WeightDtype>("--weight-dtype", opts.weightDtype, weightDtypes);
  const kvDtype = oneOf<KvDtype>("--kv-dtype", opts.kvDtype, kvDtypes);
  const model = modelProfile(opts.model, opts.tokenizer);
  const hardware = hardwareProfile(opts.hardware);
  const maxModelLen = opts.maxModelLen ?? model.config.maxSeqLen;
  const avgTokens = opts.avgTokens ?? Math.min(512, maxModelLen);
  return {
    model,
    hardware,
    weightDtype,
    kvDtype,
    maxModelLen,
    avgTokens,
    blockSize: opts.blockSize,
    overheadBytes: opts.overhead,
    contextTokens: opts.contextLen ?? avgTokens,
    promptTokens: opts.promptLen ?? avgTokens,
  };
}

function describeInput(p: PlanInput) {
  return {
    ...p,
    model: { name: p.model.name, nominalParams: p.model.nominalParams, config: p.model.config },
  };
}

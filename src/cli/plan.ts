import type { Command } from "commander";
import { parseByteSize } from "../core/kv-cache-sizing.js";
import { InputError } from "../model/errors.js";
import { hardwareNames, hardwareProfile } from "../sim/hardware.js";
import { modelProfile } from "../sim/model-profile.js";
import {
  computePlan,
  type KvDtype,
  kvDtypes,
  type PlanInput,
  type WeightDtype,
  weightDtypes,
} from "../sim/plan.js";
import { formatPlan } from "../sim/plan-format.js";
import { numberOption, runAction } from "./run-action.js";

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
  overhead: string;
  json?: boolean;
}

/** Checks a flag's value against its allowed list. */
export function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T))
    throw new InputError(`${flag} must be one of ${allowed.join(", ")}, got "${value}"`);
  return value as T;
}

/** Parses a memory size flag ("2GB", "512MiB"). */
export function byteSize(flag: string, text: string): number {
  try {
    return parseByteSize(text);
  } catch (err) {
    throw new InputError(`${flag}: ${(err as Error).message}`);
  }
}

export function positiveInteger(flag: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new InputError(`${flag} must be a positive integer, got ${value}`);
  return value;
}

/** The model, hardware and dtype flags that `plan` and `simulate` share. */
export function modelHardwareOptions(command: Command): Command {
  return command
    .requiredOption(
      "--model <name|path>",
      "a shape from profiles/models.json (llama-2-7b, …) or a model path / config.json",
    )
    .option("--tokenizer <path>", "tokenizer.bin of a llama2.c model given as PATH")
    .requiredOption("--hardware <name>", `one of ${hardwareNames().join(", ")}`)
    .option("--weight-dtype <type>", weightDtypes.join(", "), "fp16")
    .option("--kv-dtype <type>", kvDtypes.join(", "), "fp16")
    .option(
      "--max-model-len <n>",
      "longest request (default: the model's context length)",
      numberOption(true),
    );
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
      numberOption(true),
    )
    .option(
      "--context-len <n>",
      "context of the decode step whose floor is shown (default: --avg-tokens)",
      numberOption(true),
    )
    .option(
      "--prompt-len <n>",
      "prompt length of the prefill shown (default: --avg-tokens)",
      numberOption(true),
    )
    .option("--block-size <n>", "tokens per KV block", numberOption(true), 16)
    .option("--overhead <size>", "memory for neither weights nor KV (activations, runtime), e.g. 2GB", "2GB")
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
  const maxModelLen = positiveInteger("--max-model-len", opts.maxModelLen ?? model.config.maxSeqLen);
  const avgTokens = positiveInteger("--avg-tokens", opts.avgTokens ?? Math.min(512, maxModelLen));
  return {
    model,
    hardware,
    weightDtype,
    kvDtype,
    maxModelLen,
    avgTokens,
    blockSize: positiveInteger("--block-size", opts.blockSize),
    overheadBytes: byteSize("--overhead", opts.overhead),
    contextTokens: positiveInteger("--context-len", opts.contextLen ?? avgTokens),
    promptTokens: positiveInteger("--prompt-len", opts.promptLen ?? avgTokens),
  };
}

function describeInput(p: PlanInput) {
  return {
    ...p,
    model: { name: p.model.name, nominalParams: p.model.nominalParams, config: p.model.config },
  };
}

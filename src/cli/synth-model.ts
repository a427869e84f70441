import type { Command } from "commander";
import { InputError } from "../model/errors.js";
import { writeGgufModel } from "../model/formats/gguf-model.js";
import { modelShapes } from "../model/profiles.js";
import { realTokenizer, syntheticModel } from "../model/synth/synth-model.js";
import type { DType } from "../model/tensor.js";
import { numberOption, positiveInteger } from "./options.js";
import { runAction } from "./run-action.js";

const synthDTypes: DType[] = ["f32", "f16", "q8_0", "q4_0"];

export function registerSynthModel(program: Command) {
  program
    .command("synth-model")
    .description("write a GGUF with a real model's shapes and seeded random weights (for speed benchmarks)")
    .requiredOption("--shape <name>", `architecture shape: ${[...modelShapes().keys()].join(", ")}`)
    .option("--dtype <type>", `weight type: ${synthDTypes.join(", ")}`, "q8_0")
    .option("--seed <n>", "random seed", numberOption(true), 0)
    .option(
      "--layers <n>",
      "keep only the first n layers (the family's layer pattern stays)",
      positiveInteger,
    )
    .option("--tokenizer <dir|tokenizer.json>", "a real model's HF tokenizer (vocabulary and chat template)")
    .requiredOption("--out <file.gguf>", "output path")
    .action(
      runAction(
        (opts: {
          shape: string;
          dtype: string;
          seed: number;
          layers?: number;
          tokenizer?: string;
          out: string;
        }) => {
          if (!synthDTypes.includes(opts.dtype as DType)) {
            throw new InputError(`--dtype must be one of ${synthDTypes.join(", ")}, got "${opts.dtype}"`);
          }
          const started = performance.now();
          const tokenizer =
            opts.tokenizer === undefined ? undefined : realTokenizer(opts.tokenizer, opts.shape);
          const model = syntheticModel(opts.shape, opts.dtype as DType, opts.seed, {
            layers: opts.layers,
            tokenizer,
          });
          writeGgufModel(model, opts.out, {
            dtype: opts.dtype as DType,
            extraMetadata: new Map([
              ["general.synthetic", { type: "bool", value: true }],
              [
                "general.description",
                {
                  type: "string",
                  value: `synthetic: ${opts.shape} shapes, random weights (seed ${opts.seed})`,
                },
              ],
            ]),
          });
          const seconds = ((performance.now() - started) / 1000).toFixed(1);
          process.stderr.write(
            `wrote ${opts.out}: synthetic ${opts.shape} (${opts.dtype}, seed ${opts.seed}) in ${seconds} s\n`,
          );
        },
      ),
    );
}

import { type Command, Option } from "commander";
import { writeGgufModel } from "../model/formats/gguf-model.js";
import { modelShapes } from "../model/profiles.js";
import { type WeightType, weightTypes } from "../model/quant/mixes.js";
import { realTokenizer, syntheticModel } from "../model/synth/synth-model.js";
import { numberOption, positiveInteger } from "./options.js";
import { progressBar } from "./progress.js";
import { runAction } from "./run-action.js";

export function registerSynthModel(program: Command) {
  program
    .command("synth-model")
    .description("write a GGUF with a real model's shapes and seeded random weights (for speed benchmarks)")
    .requiredOption("--shape <name>", `architecture shape: ${[...modelShapes().keys()].join(", ")}`)
    .addOption(
      new Option("--dtype <type>", "weight type, or a llama.cpp mix (q4_k_m …)")
        .choices(weightTypes)
        .default("q8_0"),
    )
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
          dtype: WeightType;
          seed: number;
          layers?: number;
          tokenizer?: string;
          out: string;
        }) => {
          const started = performance.now();
          const tokenizer =
            opts.tokenizer === undefined ? undefined : realTokenizer(opts.tokenizer, opts.shape);
          const progress = progressBar("random weights", "tensors");
          const model = syntheticModel(opts.shape, opts.dtype, opts.seed, {
            layers: opts.layers,
            tokenizer,
            onProgress: progress.update,
          });
          progress.stop();
          writeGgufModel(model, opts.out, {
            dtype: opts.dtype,
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

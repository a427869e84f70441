import { type Command, Option } from "commander";
import { writeGgufModel } from "../model/formats/gguf-model.js";
import { loadModel } from "../model/load.js";
import { type WeightType, weightTypes } from "../model/quant/mixes.js";
import { resolveModel } from "./default-model.js";
import { runAction } from "./run-action.js";

export function registerConvert(program: Command) {
  program
    .command("convert")
    .description("convert a llama2.c checkpoint, Hugging Face directory or GGUF file to GGUF")
    .argument("<in>", "input model: a path, or hf:ORG/REPO[:QUANT]")
    .argument("<out.gguf>", "output GGUF file")
    .option("--tokenizer <path>", "tokenizer file for formats that keep it apart (llama2.c tokenizer.bin)")
    .addOption(
      new Option("--dtype <type>", "type of the weight matrices, or a llama.cpp mix (q4_k_m …)")
        .choices(weightTypes)
        .default("f16"),
    )
    .action(
      runAction(async (input: string, output: string, opts: { tokenizer?: string; dtype: WeightType }) => {
        const model = loadModel(await resolveModel(input), { tokenizer: opts.tokenizer });
        writeGgufModel(model, output, { dtype: opts.dtype });
        process.stderr.write(`wrote ${output} (${opts.dtype}) from ${input}\n`);
      }),
    );
}

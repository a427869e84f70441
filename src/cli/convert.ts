import type { Command } from "commander";
import { InputError } from "../model/errors.js";
import { writeGgufModel } from "../model/formats/gguf-model.js";
import { loadModel } from "../model/load.js";
import type { DType } from "../model/tensor.js";
import { runAction } from "./run-action.js";

const convertDTypes: DType[] = ["f32", "f16", "q8_0", "q4_0"];

export function registerConvert(program: Command) {
  program
    .command("convert")
    .description("convert a llama2.c checkpoint, Hugging Face directory or GGUF file to GGUF")
    .argument("<in>", "input model")
    .argument("<out.gguf>", "output GGUF file")
    .option("--tokenizer <path>", "tokenizer file for formats that keep it apart (llama2.c tokenizer.bin)")
    .option("--dtype <type>", `type of the weight matrices: ${convertDTypes.join(", ")}`, "f16")
    .action(
      runAction((input: string, output: string, opts: { tokenizer?: string; dtype: string }) => {
        if (!convertDTypes.includes(opts.dtype as DType)) {
          throw new InputError(`--dtype must be one of ${convertDTypes.join(", ")}, got "${opts.dtype}"`);
        }
        const model = loadModel(input, { tokenizer: opts.tokenizer });
        writeGgufModel(model, output, { dtype: opts.dtype as DType });
        process.stderr.write(`wrote ${output} (${opts.dtype}) from ${input}\n`);
      }),
    );
}

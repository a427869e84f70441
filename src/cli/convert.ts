import { type Command, InvalidArgumentError, Option } from "commander";
import { writeGgufModel } from "../model/formats/gguf-model.js";
import { type GgufSplitLimit, parseSplitSize } from "../model/formats/gguf-split.js";
import { loadModel } from "../model/load.js";
import { type WeightType, weightTypes } from "../model/quant/mixes.js";
import { hubModelPath } from "./default-model.js";
import { positiveInteger } from "./options.js";
import { runAction } from "./run-action.js";

interface ConvertOptions {
  tokenizer?: string;
  dtype: WeightType;
  splitMaxTensors?: number;
  splitMaxSize?: number;
}

/** llama-gguf-split's `--split-max-size N(M|G)`, checked as commander parses it. */
function splitSize(value: string): number {
  try {
    return parseSplitSize(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

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
    .addOption(
      new Option(
        "--split-max-tensors <n>",
        "write llama.cpp's split GGUF (OUT-00001-of-0000N.gguf …) with at most n tensors per shard",
      ).argParser(positiveInteger),
    )
    .addOption(
      new Option(
        "--split-max-size <size>",
        "write llama.cpp's split GGUF with at most size bytes of tensors per shard (50M, 2G: 10^6, 10^9 bytes)",
      )
        .argParser(splitSize)
        .conflicts("splitMaxTensors"),
    )
    .action(
      runAction(async (input: string, output: string, opts: ConvertOptions) => {
        const model = loadModel(await hubModelPath(input), { tokenizer: opts.tokenizer });
        const split: GgufSplitLimit | undefined =
          opts.splitMaxTensors !== undefined
            ? { maxTensors: opts.splitMaxTensors }
            : opts.splitMaxSize !== undefined
              ? { maxBytes: opts.splitMaxSize }
              : undefined;
        const written = writeGgufModel(model, output, { dtype: opts.dtype, split });
        process.stderr.write(`wrote ${written.join(", ")} (${opts.dtype}) from ${input}\n`);
      }),
    );
}

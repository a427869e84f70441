import { Command } from "commander";
import { registerConvert } from "./convert.js";
import { registerGenerate } from "./generate.js";
import { registerServe } from "./serve.js";
import { registerSynthModel } from "./synth-model.js";

const program = new Command("vellum")
  .description("LLM inference and serving engine: paged KV cache, prefix caching, continuous batching")
  .showHelpAfterError();
registerGenerate(program);
registerServe(program);
registerConvert(program);
registerSynthModel(program);
await program.parseAsync();

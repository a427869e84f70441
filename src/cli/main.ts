import { Command } from "commander";
import { vellumVersion } from "../server/version.js";
import { registerBench } from "./bench.js";
import { registerChat } from "./chat.js";
import { registerConvert } from "./convert.js";
import { registerGenerate } from "./generate.js";
import { registerHubModels } from "./hub-models.js";
import { registerPlan } from "./plan.js";
import { registerServe } from "./serve.js";
import { registerSimulate } from "./simulate.js";
import { registerSynthModel } from "./synth-model.js";
import { registerTrain } from "./train.js";

// No help after an error: a bad flag is one line naming it (README), and --help prints the usage.
const program = new Command("vellum")
  .description("LLM inference and serving engine: paged KV cache, prefix caching, continuous batching")
  .version(vellumVersion);
registerGenerate(program);
registerChat(program);
registerServe(program);
registerConvert(program);
registerHubModels(program);
registerSynthModel(program);
registerPlan(program);
registerSimulate(program);
registerBench(program);
registerTrain(program);
await program.parseAsync();

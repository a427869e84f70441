import { Command } from "commander";
import { registerGenerate } from "./generate.js";

const program = new Command("vellum")
  .description("LLM inference and serving engine: paged KV cache, prefix caching, continuous batching")
  .showHelpAfterError();
registerGenerate(program);
await program.parseAsync();

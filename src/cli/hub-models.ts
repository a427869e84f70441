/** `vellum pull`, `vellum ls` and `vellum rm`: models from the Hugging Face Hub, in the cache other tools share. */
import type { Command } from "commander";
import { listCachedModels, removeCachedModel } from "../model/hub/cached-models.js";
import { hubCacheDir } from "../model/hub/hub-cache.js";
import { pullModel } from "../model/hub/pull.js";
import { downloadReporter } from "./download-progress.js";
import { runAction } from "./run-action.js";

const refHelp = "hf:ORG/REPO (safetensors, or the default quant), hf:ORG/REPO:QUANT or hf:ORG/REPO/FILE.gguf";
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export function registerHubModels(program: Command) {
  program
    .command("pull")
    .description("download a model from the Hugging Face Hub into the Hugging Face cache (HF_HUB_CACHE)")
    .argument("<ref>", refHelp)
    .action(
      runAction(async (ref: string) => {
        const pulled = await pullModel(ref, downloadReporter());
        const what = pulled.downloaded > 0 ? `${mib(pulled.downloaded)} downloaded` : "already in the cache";
        process.stdout.write(`${ref}: ${pulled.path} (${what})\n`);
      }),
    );

  program
    .command("ls")
    .description(
      "the models in the Hugging Face cache: size, quant, architecture, whether vellum can serve them",
    )
    .option("--json", "one JSON array instead of a table")
    .action(
      runAction((opts: { json?: boolean }) => {
        const models = listCachedModels();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(models, null, 2)}\n`);
          return;
        }
        if (models.length === 0) {
          process.stdout.write(`no models in ${hubCacheDir()}\n`);
          return;
        }
        const rows = [
          ["MODEL", "SIZE", "QUANT", "ARCH", "VELLUM"],
          ...models.map((m) => [
            m.main ? m.ref : `${m.ref}@${m.commit.slice(0, 8)}`,
            mib(m.bytes),
            m.quant,
            m.architecture,
            m.servable === true ? "yes" : `no: ${m.servable}`,
          ]),
        ];
        const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
        for (const row of rows) {
          const cells = row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c])));
          process.stdout.write(`${cells.join("  ")}\n`);
        }
      }),
    );

  program
    .command("rm")
    .description("remove a model from the Hugging Face cache (hf:ORG/REPO removes the whole repository)")
    .argument("<ref>", refHelp)
    .action(
      runAction((ref: string) => {
        process.stdout.write(`removed ${ref} (${mib(removeCachedModel(ref))} freed)\n`);
      }),
    );
}

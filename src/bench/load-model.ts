/**
 * Load time and peak RSS of loading a model: opening it (metadata, tokenizer; GGUF weights are read lazily),
 * then reading every weight into memory as the reference backend does (the native backend maps the file instead).
 * Usage: vellum bench load-model MODEL [--tokenizer PATH]
 */
import { statSync } from "node:fs";
import { loadModel } from "../model/load.js";
import { describeTypeMix } from "../model/type-mix.js";

export async function runLoadModel(path: string, options: { tokenizer?: string }): Promise<void> {
  const started = performance.now();
  const model = loadModel(path, options);
  const openSeconds = (performance.now() - started) / 1000;
  let bytes = 0;
  for (const t of model.tensors.values()) bytes += t.data.byteLength;
  const seconds = (performance.now() - started) / 1000;
  // A GGUF model's size is that of the files its tensors lie in (every shard of a split model).
  const files = new Set([...model.tensors.values()].flatMap((t) => (t.file ? [t.file.path] : [])));
  const size =
    files.size > 0
      ? [...files].reduce((sum, file) => sum + statSync(file).size, 0)
      : statSync(path).isDirectory()
        ? Number.NaN
        : statSync(path).size;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
  console.log(
    `${model.name} (${model.format}): opened in ${openSeconds.toFixed(2)} s, all ${gb(bytes)} of weights read by ${seconds.toFixed(2)} s; ` +
      `file ${gb(size)}, peak RSS ${gb(peakRss)} (${(peakRss / size).toFixed(2)}x the file)`,
  );
  console.log(`weights: ${describeTypeMix(model.tensors.values())}`);
}

/**
 * Load time and peak RSS of loading a model (weights read into memory, tokenizer built).
 * Usage: node dist/bench/load-model.js MODEL [--tokenizer PATH]
 */
import { statSync } from "node:fs";
import { loadModel } from "../model/load.js";

const [path, flag, tokenizer] = process.argv.slice(2);
if (!path) {
  console.error("usage: load-model MODEL [--tokenizer PATH]");
  process.exit(1);
}
const started = performance.now();
const model = loadModel(path, flag === "--tokenizer" ? { tokenizer } : {});
const seconds = (performance.now() - started) / 1000;
const size = statSync(path).isDirectory() ? Number.NaN : statSync(path).size;
const peakRss = process.resourceUsage().maxRSS * 1024;
const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
console.log(
  `${model.name} (${model.format}): loaded in ${seconds.toFixed(2)} s; file ${gb(size)}, peak RSS ${gb(peakRss)} (${(peakRss / size).toFixed(2)}x the file)`,
);

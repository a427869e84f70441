/**
 * The native backend's benchmarks, one command each:
 *   node dist/bench/main.js probe [--threads N]
 *   node dist/bench/main.js latency --model FILE.gguf [--threads N]
 *   node dist/bench/main.js batch-scaling --model FILE.gguf [--threads N]
 *   node dist/bench/main.js llama-cpp-compare --model FILE.gguf [--threads N]
 * Each prints a table and writes JSON (--out, default under the OS temp directory).
 */
import { runBatchScaling } from "./batch-scaling.js";
import { runLatency } from "./latency.js";
import { runLlamaCppCompare } from "./llama-cpp-compare.js";
import { runProbe } from "./probe.js";

const benches: Record<string, (argv: string[]) => Promise<void>> = {
  probe: runProbe,
  latency: runLatency,
  "batch-scaling": runBatchScaling,
  "llama-cpp-compare": runLlamaCppCompare,
};

const [name, ...argv] = process.argv.slice(2);
const bench = benches[name];
if (!bench) {
  console.error(`usage: bench <${Object.keys(benches).join("|")}> [options]`);
  process.exit(1);
}
try {
  await bench(argv);
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}

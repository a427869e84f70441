import { Presets, SingleBar } from "cli-progress";
import { type LoadOptions, loadModel } from "../model/load.js";
import type { LoadedModel } from "../model/model.js";

/**
 * A progress bar for long, otherwise silent work, on stderr when it is a terminal; elsewhere (pipes, logs,
 * tests) nothing. `update` fits synchronous loops: the bar redraws from inside it, as no timer can fire there.
 */
export function progressBar(label: string, unit: string) {
  if (!process.stderr.isTTY) return { update: (_done: number, _total: number) => {}, stop: () => {} };
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {percentage}% | {value}/{total} ${unit} | {duration_formatted}`,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update(done: number, total: number) {
      if (!started) bar.start(total, 0);
      started = true;
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** loadModel with a progress bar over the weights it reads (see LoadOptions.onProgress). */
export function loadModelShowingProgress(path: string, opts: LoadOptions = {}): LoadedModel {
  const bar = progressBar("loading weights", "tensors");
  try {
    return loadModel(path, { ...opts, onProgress: bar.update });
  } finally {
    bar.stop();
  }
}

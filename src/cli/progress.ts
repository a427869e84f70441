import { Presets, SingleBar } from "cli-progress";
import type { InterleaveProgress } from "../backend/native/addon.js";
import { type LoadOptions, loadModel } from "../model/load.js";
import type { LoadedModel } from "../model/model.js";

/**
 * A progress bar for long, otherwise silent work, on stderr when it is a terminal; elsewhere (pipes, logs,
 * tests) nothing. `update` fits synchronous loops (the bar redraws from inside it, as no timer can fire there) and
 * work on other threads that reports to the event loop alike.
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

/**
 * Runs `work` (building a backend or an engine) with a bar over the weights the native backend lays out for its
 * kernels, in MiB (KiB for a model under 1 MiB); none when there is nothing to lay out (the reference backend,
 * scalar kernels, f16 or f32 weights).
 */
export async function withInterleavingBar<T>(
  work: (onProgress: InterleaveProgress) => Promise<T>,
): Promise<T> {
  let bar: ReturnType<typeof progressBar> | undefined;
  let unitBytes = 2 ** 20;
  try {
    return await work((done, total) => {
      if (total === 0) return;
      if (!bar) {
        unitBytes = total >= 2 ** 20 ? 2 ** 20 : 2 ** 10;
        bar = progressBar("interleaving weights", unitBytes === 2 ** 20 ? "MiB" : "KiB");
      }
      bar.update(Math.round(done / unitBytes), Math.round(total / unitBytes));
    });
  } finally {
    bar?.stop();
  }
}

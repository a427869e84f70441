/**
 * How a Hub download shows on stderr: a progress bar with speed and ETA on a terminal, and on anything else
 * (a log, CI) a line at the start, every 10 seconds, and at the end.
 */
import cliProgress from "cli-progress";
import type { DownloadEvents } from "../model/hub/download-blob.js";
import type { PullOptions } from "../model/hub/pull.js";

const logEveryMs = 10_000;
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

export function downloadReporter(
  stream: NodeJS.WriteStream = process.stderr,
): Pick<PullOptions, "events" | "note"> {
  const note = (line: string) => stream.write(`${line}\n`);
  return { note, events: stream.isTTY ? barEvents(stream) : logEvents(note) };
}

function barEvents(stream: NodeJS.WriteStream): DownloadEvents {
  const speed = rateMeter();
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(file, resumedAt) {
      bar = new cliProgress.SingleBar(
        {
          format: `${file.path} {bar} {percentage}% | {done}/{all} MiB | {speed} MiB/s | ETA {eta_formatted}`,
          stream,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(file.size, resumedAt, { done: mib(resumedAt), all: mib(file.size), speed: "0.0" });
      speed.reset(resumedAt);
    },
    progress(_file, done) {
      bar?.update(done, { done: mib(done), speed: mib(speed.at(done)) });
    },
    finish() {
      bar?.stop();
    },
  };
}

function logEvents(note: (line: string) => void): DownloadEvents {
  const speed = rateMeter();
  let lastLog = 0;
  return {
    start(file, resumedAt) {
      speed.reset(resumedAt);
      lastLog = performance.now();
      note(
        `downloading ${file.path}: ${mib(file.size)} MiB${resumedAt > 0 ? `, resuming at ${mib(resumedAt)} MiB` : ""}`,
      );
    },
    progress(file, done) {
      if (performance.now() - lastLog < logEveryMs) return;
      lastLog = performance.now();
      const rate = speed.at(done);
      const eta = rate > 0 ? `${Math.ceil((file.size - done) / rate)} s` : "?";
      note(
        `downloading ${file.path}: ${mib(done)} of ${mib(file.size)} MiB (${Math.floor((100 * done) / file.size)}%), ${mib(rate)} MiB/s, ETA ${eta}`,
      );
    },
    finish(file) {
      note(`downloaded ${file.path} (${mib(file.size)} MiB, checked against the Hub's hash)`);
    },
  };
}

/** Bytes per second since the download (re)started. */
function rateMeter() {
  let startedAt = 0;
  let startBytes = 0;
  return {
    reset(bytes: number) {
      startedAt = performance.now();
      startBytes = bytes;
    },
    at(bytes: number): number {
      const seconds = (performance.now() - startedAt) / 1000;
      return seconds > 0 ? (bytes - startBytes) / seconds : 0;
    },
  };
}

/**
 * A Hub ref → the local path `loadModel` opens (a GGUF file, its first shard, or a snapshot directory of a
 * safetensors checkpoint), through the shared Hugging Face cache.
 *
 * `resolveHubModel` (what --model uses) answers from the cache without any request when the cache holds what the
 * ref names; `pullModel` (vellum pull) always asks the Hub for main's current commit. Either downloads only what
 * the cache lacks, after checking from the file's header (or config.json) that vellum can serve the model.
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { formatBytes } from "../../util/byte-size.js";
import { InputError } from "../errors.js";
import { readJsonObject } from "../formats/hf-config.js";
import { type DownloadEvents, downloadBlob } from "./download-blob.js";
import { hubCacheDir, RepoCache } from "./hub-cache.js";
import { formatHubRef, type HubRef, parseHubRef } from "./hub-ref.js";
import { HubRepo, type HubSettings, hubSettings, type RemoteFile } from "./hub-repo.js";
import { chooseCachedModelFiles, chooseModelFiles, type ModelFiles } from "./model-files.js";
import { checkHfConfig, checkRemoteGguf } from "./servable.js";

export interface PullOptions {
  settings?: HubSettings;
  cacheDir?: string;
  events?: DownloadEvents;
  /** One-line notes: the file chosen, whether vellum can serve it. */
  note?(line: string): void;
}

export interface PulledModel {
  ref: HubRef;
  /** What `loadModel` opens. */
  path: string;
  commit: string;
  /** The model's files, relative to the snapshot. */
  files: string[];
  /** Bytes this call downloaded (0 when the cache held everything, or another pull fetched it meanwhile). */
  downloaded: number;
}

export async function resolveHubModel(text: string, opts: PullOptions = {}): Promise<PulledModel> {
  return fetchModel(text, opts, true);
}

export async function pullModel(text: string, opts: PullOptions = {}): Promise<PulledModel> {
  return fetchModel(text, opts, false);
}

/** The model from the cache (first, or only when offline), else from the Hub. */
async function fetchModel(text: string, opts: PullOptions, cacheFirst: boolean): Promise<PulledModel> {
  const ref = parseHubRef(text);
  const settings = opts.settings ?? hubSettings();
  const cache = new RepoCache(ref.repo, opts.cacheDir ?? hubCacheDir());
  if (!cacheFirst && !settings.offline) return download(ref, cache, settings, opts);
  const cached = fromCache(ref, cache);
  if (cached) return cached;
  if (settings.offline) {
    throw new InputError(
      `${formatHubRef(ref)} is not in the Hugging Face cache (${cache.dir}) and HF_HUB_OFFLINE is set: unset it to download`,
    );
  }
  return download(ref, cache, settings, opts);
}

/** The model from main's cached snapshot, if the cache holds every file the ref names. */
function fromCache(ref: HubRef, cache: RepoCache): PulledModel | undefined {
  const commit = cache.commitOf();
  if (!commit) return undefined;
  const choice = chooseCachedModelFiles(ref, cache.snapshotFiles(commit));
  if (!choice) return undefined;
  const snapshot = cache.snapshotDir(commit);
  if (choice.format === "safetensors" && !hasAllShards(snapshot, choice.files)) return undefined;
  return { ref, path: localPath(snapshot, choice), commit, files: choice.files, downloaded: 0 };
}

/** Whether the weight files model.safetensors.index.json names are all there (or the single model.safetensors). */
function hasAllShards(snapshot: string, files: readonly string[]): boolean {
  const index = join(snapshot, "model.safetensors.index.json");
  if (!existsSync(index)) return files.includes("model.safetensors");
  const weightMap = readJsonObject(index).weight_map;
  if (typeof weightMap !== "object" || weightMap === null) return false;
  return Object.values(weightMap).every((shard) => typeof shard === "string" && files.includes(shard));
}

/** A safetensors checkpoint's "architecture, dtype", from its config.json (downloaded first: it is small). */
async function checkConfig(
  fetch: (file: RemoteFile) => Promise<string>,
  files: readonly RemoteFile[],
  ref: HubRef,
): Promise<string> {
  const config = files.find((f) => f.path === "config.json") as RemoteFile;
  const { architecture, dtype } = checkHfConfig(
    await fetch(config),
    ref.repo,
    files.map((f) => f.path),
  );
  return dtype ? `${architecture}, ${dtype}` : architecture;
}

function localPath(snapshot: string, choice: ModelFiles): string {
  return choice.format === "gguf" ? join(snapshot, choice.files[0]) : snapshot;
}

async function download(
  ref: HubRef,
  cache: RepoCache,
  settings: HubSettings,
  opts: PullOptions,
): Promise<PulledModel> {
  const hub = new HubRepo(ref.repo, settings);
  const commit = await hub.commit();
  const listing = await hub.files(commit);
  const choice = chooseModelFiles(
    ref,
    listing.map((f) => f.path),
  );
  const files = choice.files.map((path) => listing.find((f) => f.path === path) as RemoteFile);
  let downloaded = 0;
  const fetch = async (file: RemoteFile) => {
    downloaded += await downloadBlob(
      cache,
      file,
      async (start) => (await hub.open(commit, file)).slice(start).stream() as ReadableStream<Uint8Array>,
      opts.events,
    );
    return cache.link(commit, file.path, file.etag);
  };
  const missing = files.filter((f) => !cache.hasBlob(f.etag));
  const bytes = missing.reduce((sum, f) => sum + f.size, 0);
  // A download that was begun was checked when it began.
  const begun = missing.some((f) => existsSync(cache.incompletePath(f.etag)));
  if (missing.length > 0 && !begun) {
    const what = choice.format === "gguf" ? choice.files.join(", ") : `${choice.files.length} files`;
    const verdict =
      choice.format === "gguf"
        ? await checkRemoteGguf(hub, commit, files)
        : await checkConfig(fetch, files, ref);
    opts.note?.(
      `${formatHubRef(ref)}: ${what} (${formatBytes(bytes)} to download): ${verdict}: vellum can serve it`,
    );
  }
  for (const file of files) await fetch(file);
  cache.setRef(commit);
  return {
    ref,
    path: localPath(cache.snapshotDir(commit), choice),
    commit,
    files: choice.files,
    downloaded,
  };
}

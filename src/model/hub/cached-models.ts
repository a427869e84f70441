/**
 * The models the Hugging Face cache holds, whoever downloaded them, and their removal: `vellum ls` and `vellum rm`.
 * The cache is walked here rather than with @huggingface/hub's scanCacheDir, which skips files in subfolders (where
 * many repositories keep split GGUFs) and drops a whole repository over one broken link.
 */

import { existsSync, readdirSync, readlinkSync, rmSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { getRepoFolderName } from "@huggingface/hub";
import { InputError } from "../errors.js";
import { loadGgufModel } from "../formats/gguf-model.js";
import { ggufShardPaths } from "../formats/gguf-split.js";
import { describeTypeMix } from "../type-mix.js";
import { hubCacheDir, RepoCache } from "./hub-cache.js";
import { formatHubRef, type HubRef, parseHubRef } from "./hub-ref.js";
import { chooseCachedModelFiles, ggufName } from "./model-files.js";
import { checkHfConfig } from "./servable.js";

export interface CachedModel {
  /** The ref that names it: hf:ORG/REPO:TAG, hf:ORG/REPO/FILE.gguf or hf:ORG/REPO. */
  ref: string;
  /** The commit of the snapshot that holds it; `main` says whether refs/main points there. */
  commit: string;
  main: boolean;
  bytes: number;
  /** The quant tag of a GGUF, the dtype of a safetensors checkpoint. */
  quant: string;
  architecture: string;
  /** Whether vellum can serve it, and why not. */
  servable: true | string;
  path: string;
}

const folderPrefix = getRepoFolderName({ name: "", type: "model" });

export function listCachedModels(cacheDir = hubCacheDir()): CachedModel[] {
  if (!existsSync(cacheDir)) return [];
  const models: CachedModel[] = [];
  for (const folder of readdirSync(cacheDir).sort()) {
    if (!folder.startsWith(folderPrefix)) continue;
    const repo = folder.slice(folderPrefix.length).split("--").join("/");
    const cache = new RepoCache(repo, cacheDir);
    const main = cache.commitOf();
    for (const commit of cache.snapshotCommits()) {
      models.push(...modelsOfSnapshot(cache, commit, commit === main));
    }
  }
  return models;
}

function modelsOfSnapshot(cache: RepoCache, commit: string, main: boolean): CachedModel[] {
  const files = cache.snapshotFiles(commit);
  const dir = cache.snapshotDir(commit);
  const size = (paths: string[]) => paths.reduce((sum, p) => sum + statSync(join(dir, p)).size, 0);
  const models: CachedModel[] = [];
  for (const path of files) {
    const name = ggufName(path);
    if (name?.index !== 1) continue;
    const shards = ggufShardPaths(path).filter((p) => files.includes(p));
    const byTag: HubRef = { repo: cache.repo, tag: name.tag };
    const ref =
      name.tag && chooseCachedModelFiles(byTag, files)?.files[0] === path
        ? byTag
        : { repo: cache.repo, file: path };
    const entry = { ref: formatHubRef(ref), commit, main, bytes: size(shards), path: join(dir, path) };
    if (shards.length < name.count) {
      models.push({
        ...entry,
        quant: name.tag,
        architecture: "?",
        servable: `${shards.length} of ${name.count} shards`,
      });
      continue;
    }
    try {
      const model = loadGgufModel(join(dir, path));
      const mainType = describeTypeMix(model.tensors.values()).split(" ")[0];
      models.push({
        ...entry,
        quant: name.tag || mainType,
        architecture: model.config.architecture,
        servable: true,
      });
    } catch (e) {
      models.push({ ...entry, quant: name.tag, architecture: "?", servable: (e as Error).message });
    }
  }
  const checkpoint = chooseCachedModelFiles({ repo: cache.repo }, files);
  if (checkpoint?.format === "safetensors") {
    const entry = {
      ref: formatHubRef({ repo: cache.repo }),
      commit,
      main,
      bytes: size(checkpoint.files),
      path: dir,
    };
    try {
      const { architecture, dtype = "?" } = checkHfConfig(join(dir, "config.json"), cache.repo, files);
      models.push({ ...entry, quant: dtype, architecture, servable: true });
    } catch (e) {
      models.push({ ...entry, quant: "?", architecture: "?", servable: (e as Error).message });
    }
  }
  return models;
}

/**
 * Removes what a ref names from the cache: hf:ORG/REPO removes the whole repository; a quant tag or a file removes
 * those files from every snapshot, then the blobs no snapshot links to any more (a download in progress stays).
 * Returns the bytes freed.
 */
export function removeCachedModel(text: string, cacheDir = hubCacheDir()): number {
  const ref = parseHubRef(text);
  const cache = new RepoCache(ref.repo, cacheDir);
  if (!existsSync(cache.dir)) throw new InputError(`${text}: ${ref.repo} is not in the cache (${cacheDir})`);
  const blobs = join(cache.dir, "blobs");
  const blobBytes = () =>
    existsSync(blobs) ? readdirSync(blobs).reduce((sum, b) => sum + statSync(join(blobs, b)).size, 0) : 0;
  const before = blobBytes();
  if (!ref.tag && !ref.file) {
    rmSync(cache.dir, { recursive: true, force: true });
    rmSync(cache.lockDir, { recursive: true, force: true });
    return before;
  }
  let removed = 0;
  for (const commit of cache.snapshotCommits()) {
    const choice = chooseCachedModelFiles(ref, cache.snapshotFiles(commit));
    for (const file of choice?.files ?? []) {
      rmSync(join(cache.snapshotDir(commit), file));
      removed++;
    }
  }
  if (removed === 0) throw new InputError(`${text}: the cache holds no such model (see vellum ls)`);
  const linked = new Set(linkTargets(join(cache.dir, "snapshots")));
  for (const blob of readdirSync(blobs)) {
    if (!linked.has(blob) && !blob.endsWith(".incomplete")) rmSync(join(blobs, blob), { force: true });
  }
  return before - blobBytes();
}

/** The blob names the snapshots' links point to. */
function linkTargets(snapshots: string): string[] {
  return readdirSync(snapshots, { recursive: true, encoding: "utf8" }).flatMap((p) => {
    try {
      return [basename(readlinkSync(join(snapshots, p)))];
    } catch {
      return [];
    }
  });
}

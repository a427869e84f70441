/**
 * One repository in the standard Hugging Face hub cache, the layout huggingface_hub, transformers, vLLM and
 * llama.cpp share, so that a file any of them downloaded is found here and not fetched twice:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
 *     models--ORG--REPO/
 *       refs/main                          the commit `main` pointed at when last fetched
 *       blobs/<etag>                       file contents, named by the LFS sha256 (or the git blob sha1)
 *       blobs/<etag>.incomplete            a download in progress: never trusted, resumed from its end
 *       snapshots/<commit>/<path>          symlinks to ../../blobs/<etag>, one tree per commit
 *     .locks/models--ORG--REPO/<etag>.lock  huggingface_hub's lock on downloading a blob (vellum's: <etag>.vellum.lock)
 */

import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { getHFHubCachePath, getRepoFolderName } from "@huggingface/hub";

export const hubCacheDir = (): string => getHFHubCachePath();

export class RepoCache {
  /** models--ORG--REPO. */
  readonly dir: string;
  readonly lockDir: string;

  constructor(
    readonly repo: string,
    cacheDir = hubCacheDir(),
  ) {
    const folder = getRepoFolderName({ name: repo, type: "model" });
    this.dir = join(cacheDir, folder);
    this.lockDir = join(cacheDir, ".locks", folder);
  }

  /** The commit a ref (a branch) pointed at when last fetched. */
  commitOf(ref = "main"): string | undefined {
    const path = join(this.dir, "refs", ref);
    return existsSync(path) ? readFileSync(path, "utf8").trim() : undefined;
  }

  setRef(commit: string, ref = "main"): void {
    writeAtomically(join(this.dir, "refs", ref), commit);
  }

  /** The commits the cache holds a snapshot of. */
  snapshotCommits(): string[] {
    const snapshots = join(this.dir, "snapshots");
    return existsSync(snapshots) ? readdirSync(snapshots).sort() : [];
  }

  snapshotDir(commit: string): string {
    return join(this.dir, "snapshots", commit);
  }

  /** Paths (relative, "/"-separated) of the files a snapshot holds whose content is present. */
  snapshotFiles(commit: string): string[] {
    const dir = this.snapshotDir(commit);
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { recursive: true, encoding: "utf8" })
      .map((p) => p.split("\\").join("/"))
      .filter((p) => isFile(join(dir, p)));
  }

  blobPath(etag: string): string {
    return join(this.dir, "blobs", etag);
  }

  hasBlob(etag: string): boolean {
    return existsSync(this.blobPath(etag));
  }

  incompletePath(etag: string): string {
    return `${this.blobPath(etag)}.incomplete`;
  }

  /**
   * vellum's lock on downloading a blob. Not huggingface_hub's `<etag>.lock`: that is a file it flocks (which Node
   * cannot) and leaves behind, where vellum's lock is a directory (proper-lockfile's mkdir lock).
   */
  lockPath(etag: string): string {
    return join(this.lockDir, `${etag}.vellum.lock`);
  }

  /** Moves a verified download into place: from here on the cache trusts it. */
  commitBlob(etag: string): void {
    renameSync(this.incompletePath(etag), this.blobPath(etag));
  }

  /** Points snapshots/<commit>/<path> at the blob; returns the snapshot path. */
  link(commit: string, path: string, etag: string): string {
    const target = join(this.snapshotDir(commit), path);
    mkdirSync(dirname(target), { recursive: true });
    rmSync(target, { force: true });
    symlinkSync(relative(dirname(target), this.blobPath(etag)), target);
    return target;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Writes through a temporary file and a rename, so that a reader never sees half a file. */
function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  mkdirSync(dirname(path), { recursive: true });
  rmSync(temporary, { force: true });
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

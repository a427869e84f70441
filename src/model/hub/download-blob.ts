/**
 * Downloads one file into the cache's blobs, so that:
 * - an interrupted download resumes from the end of its `.incomplete` file, in this run (a few retries) or the next;
 * - the bytes are checked against the listing's size and digest (the LFS sha256, or the git blob sha1) before the
 *   file is renamed to its blob name, the only name the cache trusts; bytes that fail are deleted;
 * - two pulls of the same file, in one process or several, take turns through a lock in .locks/, and the second
 *   finds the blob the first finished. A download huggingface_hub left unfinished is resumed as vellum's own (same
 *   .incomplete name); one it runs at the same moment is not excluded (its lock is a flock), but bytes that two
 *   writers mixed fail the final check and are deleted.
 */

import { createHash, type Hash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, statSync, truncateSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import { dirname } from "node:path";
import lockfile from "proper-lockfile";
import { InputError } from "../errors.js";
import type { RepoCache } from "./hub-cache.js";
import type { RemoteFile } from "./hub-repo.js";

/** What a download reports as it goes; `done` bytes count what was already on disk too. */
export interface DownloadEvents {
  start?(file: RemoteFile, resumedAt: number): void;
  progress?(file: RemoteFile, done: number): void;
  finish?(file: RemoteFile): void;
}

/** Opens the file's bytes from `start` to its end. */
export type OpenFrom = (start: number) => Promise<ReadableStream<Uint8Array>>;

/** Retries in a row without progress, within one run, after the connection drops; each resumes where the last stopped. */
const retries = 4;
/** A lock not refreshed for this long belongs to a process that died, and is taken over. */
const staleLockMs = 30_000;

/** Returns the bytes this call fetched: 0 when the blob was there, or another pull finished it meanwhile. */
export async function downloadBlob(
  cache: RepoCache,
  file: RemoteFile,
  openFrom: OpenFrom,
  events: DownloadEvents = {},
): Promise<number> {
  if (cache.hasBlob(file.etag)) return 0;
  const lockPath = cache.lockPath(file.etag);
  mkdirSync(dirname(lockPath), { recursive: true });
  mkdirSync(dirname(cache.blobPath(file.etag)), { recursive: true });
  const release = await lockfile.lock(cache.blobPath(file.etag), {
    lockfilePath: lockPath,
    realpath: false,
    stale: staleLockMs,
    retries: { forever: true, minTimeout: 100, maxTimeout: 1000 },
    // A lock another pull took over as stale (this process stalled past `stale`) is no reason to crash, which is
    // proper-lockfile's default: if both then write the file, the final check fails and deletes it.
    onCompromised: () => {},
  });
  try {
    if (cache.hasBlob(file.etag)) return 0;
    const fetched = await fetchVerified(cache, file, openFrom, events);
    cache.commitBlob(file.etag);
    return fetched;
  } finally {
    await release();
  }
}

/** Downloads the rest of the file into its .incomplete file and checks it; returns the bytes fetched. */
async function fetchVerified(
  cache: RepoCache,
  file: RemoteFile,
  openFrom: OpenFrom,
  events: DownloadEvents,
): Promise<number> {
  const partial = cache.incompletePath(file.etag);
  if (existsSync(partial) && statSync(partial).size > file.size) truncateSync(partial, 0);
  const hash = await hashOf(partial, file);
  let done = existsSync(partial) ? statSync(partial).size : 0;
  const resumedAt = done;
  events.start?.(file, done);
  let failures = 0;
  while (done < file.size) {
    const out = await open(partial, "a");
    const attemptFrom = done;
    try {
      for await (const chunk of await openFrom(done)) {
        const bytes = chunk.subarray(0, file.size - done);
        await out.write(bytes);
        hash.update(bytes);
        done += bytes.length;
        events.progress?.(file, done);
      }
      if (done < file.size) throw new Error(`the server sent ${done} of ${file.size} bytes`);
    } catch (e) {
      if (e instanceof InputError) throw e;
      failures = done > attemptFrom ? 1 : failures + 1;
      if (failures > retries) {
        throw new InputError(
          `${cache.repo}: ${file.path}: download stopped at byte ${done} of ${file.size} (${reason(e)}); run the same command again to resume`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** (failures - 1)));
    } finally {
      await out.close();
    }
  }
  const digest = hash.digest("hex");
  if (digest !== file.etag) {
    await rm(partial, { force: true });
    throw new InputError(
      `${cache.repo}: ${file.path}: the downloaded bytes have ${file.digest} ${digest}, but the Hub lists ${file.etag}; the download was deleted`,
    );
  }
  events.finish?.(file);
  return file.size - resumedAt;
}

/** A hash of the file's digest kind, fed with the bytes already downloaded. */
async function hashOf(partial: string, file: RemoteFile): Promise<Hash> {
  const hash =
    file.digest === "sha256" ? createHash("sha256") : createHash("sha1").update(`blob ${file.size}\0`);
  if (existsSync(partial)) {
    for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
  }
  return hash;
}

function reason(e: unknown): string {
  if (typeof e === "string") return e;
  const error = e as { message?: string; cause?: { message?: string } };
  return error.cause?.message ?? error.message ?? String(e);
}

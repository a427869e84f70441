/**
 * One repository on the Hub (or the mirror HF_ENDPOINT names), through the official client @huggingface/hub:
 * its commit, its file listing, and a file's bytes as a Blob whose slices are HTTP range requests. Every failure
 * becomes an InputError that says what to do (a token, a license to accept, offline mode).
 */

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { downloadFile, HubApiError, listFiles, modelInfo } from "@huggingface/hub";
import { InputError } from "../errors.js";

export interface HubSettings {
  /** HF_ENDPOINT, default https://huggingface.co. */
  endpoint: string;
  /** HF_TOKEN, else the token `huggingface-cli login` saved in $HF_HOME/token. */
  token?: string;
  /** HF_HUB_OFFLINE: use only the cache. */
  offline: boolean;
}

export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(env.HOME ?? ".", ".cache"), "huggingface");
  const tokenFile = join(home, "token");
  const token =
    env.HF_TOKEN || (existsSync(tokenFile) ? readFileSync(tokenFile, "utf8").trim() : undefined) || undefined;
  if (token !== undefined && !token.startsWith("hf_")) {
    throw new InputError("HF_TOKEN is not a Hugging Face access token (they start with hf_)");
  }
  return {
    endpoint: (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, ""),
    token,
    offline: ["1", "on", "yes", "true"].includes((env.HF_HUB_OFFLINE ?? "").toLowerCase()),
  };
}

/** A file of a repository at one commit, as its tree listing describes it. */
export interface RemoteFile {
  path: string;
  size: number;
  /** The name of its blob in the cache: the LFS sha256, or the git blob sha1 of a file kept in git. */
  etag: string;
  /** How to check the downloaded bytes against `etag`. */
  digest: "sha256" | "git-sha1";
}

export class HubRepo {
  private gated: false | "auto" | "manual" = false;

  constructor(
    readonly repo: string,
    private readonly settings: HubSettings,
  ) {}

  private get access() {
    return { hubUrl: this.settings.endpoint, accessToken: this.settings.token };
  }

  /** The commit `main` points at. */
  async commit(): Promise<string> {
    const info = await this.call("read the model's information", () =>
      modelInfo({ name: this.repo, revision: "main", additionalFields: ["sha"], ...this.access }),
    );
    this.gated = info.gated;
    if (typeof info.sha !== "string" || !/^[0-9a-f]{40}$/.test(info.sha)) {
      throw new InputError(`${this.repo}: ${this.settings.endpoint} gave no commit for main`);
    }
    return info.sha;
  }

  async files(commit: string): Promise<RemoteFile[]> {
    return this.call("list the files", async () => {
      const files: RemoteFile[] = [];
      for await (const entry of listFiles({
        repo: this.repo,
        revision: commit,
        recursive: true,
        ...this.access,
      })) {
        if (entry.type !== "file") continue;
        const lfs = entry.lfs;
        if (lfs) files.push({ path: entry.path, size: lfs.size, etag: lfs.oid, digest: "sha256" });
        else if (entry.oid)
          files.push({ path: entry.path, size: entry.size, etag: entry.oid, digest: "git-sha1" });
      }
      return files;
    });
  }

  /** The file's bytes at `commit`: `slice(start).stream()` resumes a download, `slice(0, n)` reads a header. */
  async open(commit: string, file: RemoteFile): Promise<Blob> {
    const blob = await this.call(`download ${file.path}`, () =>
      downloadFile({ repo: this.repo, path: file.path, revision: commit, xet: false, ...this.access }),
    );
    if (!blob) throw new InputError(`${this.repo}: ${file.path} is not in the repository`);
    if (blob.size !== file.size) {
      throw new InputError(
        `${this.repo}: ${file.path} is ${blob.size} bytes, but its listing says ${file.size}`,
      );
    }
    return blob;
  }

  /** Reads the bytes [start, end) of a file. */
  async read(blob: Blob, start: number, end: number, path: string): Promise<Uint8Array> {
    return this.call(`read ${path}`, async () => new Uint8Array(await blob.slice(start, end).arrayBuffer()));
  }

  /** Runs a Hub call, turning its failures into messages that say what to do. */
  async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      throw this.explain(e, what);
    }
  }

  explain(e: unknown, what: string): Error {
    if (e instanceof InputError) return e;
    const { endpoint, token } = this.settings;
    const page = `${endpoint}/${this.repo}`;
    const cannot = `${this.repo}: cannot ${what}`;
    if (e instanceof HubApiError) {
      const says = `${endpoint} says ${e.statusCode} (${firstSentence(e)})`;
      if (e.statusCode === 401 && token) {
        return new InputError(
          `${cannot}: ${says}: HF_TOKEN was refused (mistyped or revoked?); make a token at ${endpoint}/settings/tokens`,
        );
      }
      if (this.gated && (e.statusCode === 401 || e.statusCode === 403)) {
        return new InputError(
          token
            ? `${cannot}: ${this.repo} is gated and HF_TOKEN's account has not been granted access; accept its conditions at ${page} (logged in as that account), then try again`
            : `${cannot}: ${this.repo} is gated; accept its conditions at ${page}, then set HF_TOKEN to an access token of that account (${endpoint}/settings/tokens)`,
        );
      }
      if (e.statusCode === 401 || e.statusCode === 403 || e.statusCode === 404) {
        const hint = token ? "HF_TOKEN has no access to it" : "if it is private, set HF_TOKEN";
        return new InputError(`${cannot}: ${says}: no such repository or file, or ${hint}`);
      }
      return new InputError(`${cannot}: ${says}`);
    }
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    return new InputError(
      `${cannot}: ${endpoint} cannot be reached (${cause}); set HF_HUB_OFFLINE=1 to use only cached models, or HF_ENDPOINT to use a mirror`,
    );
  }
}

/** The Hub's message without the library's "URL: … Request ID: …" trailer. */
function firstSentence(e: HubApiError): string {
  return e.message.split(". URL: ")[0];
}

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  downloadFile,
  downloadFileToCacheDir,
  fileDownloadInfo,
  HubApiError,
  type ListFileEntry,
  listFiles,
  modelInfo,
  pathsInfo,
} from "@huggingface/hub";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rng } from "../../src/util/rng.js";
import { type HubFile, type HubServer, startHubServer } from "./hub-server.js";

/** The Hub's own protocol as the official client speaks it, against the test server. */

function randomBytes(seed: number, length: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length }, () => rng.nextUint32() & 0xff);
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

const REPO = "test-org/tiny-model";
const GATED = "test-org/gated-model";
const ACCEPTED = "hf_accepted_the_license";
const NOT_ACCEPTED = "hf_did_not_accept";

const files: HubFile[] = [
  { path: "README.md", content: new TextEncoder().encode("# tiny model\n") },
  { path: "config.json", content: new TextEncoder().encode('{"architectures":["LlamaForCausalLM"]}\n') },
  { path: "model-Q4_K_M.gguf", content: randomBytes(1, 300_000) },
  { path: "model-Q8_0.gguf", content: randomBytes(2, 20_000) },
  { path: "split/model-00001-of-00002.gguf", content: randomBytes(3, 5_000) },
  { path: "split/model-00002-of-00002.gguf", content: randomBytes(4, 4_000) },
  { path: "split/docs/notes.txt", content: new TextEncoder().encode("notes\n") },
];
const content = (path: string) => files.find((f) => f.path === path)?.content as Uint8Array;

/** What git itself says the repository's objects are: each path's type and object id (LFS files as their pointer). */
function gitObjects(
  repoFiles: { path: string; blob: Uint8Array }[],
): Map<string, { type: string; oid: string }> {
  const dir = mkdtempSync(join(tmpdir(), "hub-git-"));
  try {
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "core.autocrlf=false", "-C", dir, ...args], { encoding: "utf8" });
    git("init", "-q");
    for (const f of repoFiles) {
      mkdirSync(dirname(join(dir, f.path)), { recursive: true });
      writeFileSync(join(dir, f.path), f.blob);
    }
    git("add", "-A");
    const tree = git("write-tree").trim();
    const objects = new Map<string, { type: string; oid: string }>();
    for (const line of git("ls-tree", "-r", "-t", tree).trim().split("\n")) {
      const [, type, oid, path] = /^\d+ (\w+) (\w+)\t(.*)$/.exec(line) ?? [];
      objects.set(path, { type: type === "tree" ? "directory" : "file", oid });
    }
    return objects;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const lfsPointer = (bytes: Uint8Array) =>
  new TextEncoder().encode(
    `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(bytes)}\nsize ${bytes.length}\n`,
  );

async function statusOf(promise: Promise<unknown>): Promise<number> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HubApiError);
  return (err as HubApiError).statusCode;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<{ bytes: Uint8Array; error?: unknown }> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
    return { bytes: Buffer.concat(chunks) };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error };
  }
}

describe("hub-server, driven by @huggingface/hub", () => {
  let hub: HubServer;
  const lfsFiles = new Set(files.filter((f) => f.path.endsWith(".gguf")).map((f) => f.path));

  beforeAll(async () => {
    hub = await startHubServer({
      repos: [
        { id: REPO, files },
        {
          id: GATED,
          files: [{ path: "model.gguf", content: randomBytes(5, 1000) }],
          gated: "manual",
          acceptedTokens: [ACCEPTED],
        },
      ],
      tokens: [ACCEPTED, NOT_ACCEPTED],
      treePageSize: 3,
    });
  });
  afterAll(() => hub.close());

  const newRequests = async (action: () => Promise<unknown>) => {
    const before = hub.requests.length;
    await action();
    return hub.requests.slice(before);
  };

  it("modelInfo returns the commit sha, siblings and gating", async () => {
    const info = await modelInfo({ name: REPO, hubUrl: hub.url, additionalFields: ["sha", "filePaths"] });
    expect(info.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(info.sha).toBe(hub.commit(REPO));
    expect(info.name).toBe(REPO);
    expect(info.gated).toBe(false);
    expect([...info.filePaths].sort()).toEqual(files.map((f) => f.path).sort());
    const atCommit = await modelInfo({
      name: REPO,
      hubUrl: hub.url,
      revision: info.sha,
      additionalFields: ["sha"],
    });
    expect(atCommit.sha).toBe(info.sha);
    expect(await statusOf(modelInfo({ name: REPO, hubUrl: hub.url, revision: "no-such-branch" }))).toBe(404);
  });

  it("derives the commit from the content: same files, same sha; one byte changed, another", async () => {
    const flipped = files.map((f) =>
      f.path === "README.md" ? { ...f, content: new TextEncoder().encode("# tiny modem\n") } : f,
    );
    const again = await startHubServer({
      repos: [
        { id: REPO, files },
        { id: "test-org/other", files: flipped },
      ],
    });
    try {
      expect(again.commit(REPO)).toBe(hub.commit(REPO));
      expect(again.commit("test-org/other")).not.toBe(hub.commit(REPO));
    } finally {
      await again.close();
    }
  });

  it("listFiles walks the Link pages and reports git's object ids, LFS sha256 and sizes", async () => {
    const listed: ListFileEntry[] = [];
    const requests = await newRequests(async () => {
      for await (const e of listFiles({ repo: REPO, hubUrl: hub.url, recursive: true })) listed.push(e);
    });
    const pages = requests.filter((r) => r.path === `/api/models/${REPO}/tree/main`);
    expect(pages).toHaveLength(Math.ceil(listed.length / 3));
    expect(pages.slice(1).every((r) => r.query.has("cursor"))).toBe(true);

    const git = gitObjects(
      files.map((f) => ({ path: f.path, blob: lfsFiles.has(f.path) ? lfsPointer(f.content) : f.content })),
    );
    expect(listed.map((e) => e.path).sort()).toEqual([...git.keys()].sort());
    for (const e of listed) {
      expect({ type: e.type, oid: e.oid }).toEqual(git.get(e.path));
      if (e.type === "directory") continue;
      const bytes = content(e.path);
      expect(e.size).toBe(bytes.length);
      expect(e.lfs).toEqual(
        lfsFiles.has(e.path)
          ? { oid: sha256(bytes), size: bytes.length, pointerSize: lfsPointer(bytes).length }
          : undefined,
      );
    }

    const top: string[] = [];
    for await (const e of listFiles({ repo: REPO, hubUrl: hub.url })) top.push(`${e.type}:${e.path}`);
    expect(top.sort()).toEqual([
      "directory:split",
      "file:README.md",
      "file:config.json",
      "file:model-Q4_K_M.gguf",
      "file:model-Q8_0.gguf",
    ]);
    const sub: string[] = [];
    for await (const e of listFiles({ repo: REPO, hubUrl: hub.url, path: "split" }))
      sub.push(`${e.type}:${e.path}`);
    expect(sub.sort()).toEqual([
      "directory:split/docs",
      "file:split/model-00001-of-00002.gguf",
      "file:split/model-00002-of-00002.gguf",
    ]);
  });

  it("pathsInfo gives the last commit, which downloadFileToCacheDir names the snapshot after", async () => {
    const [info] = await pathsInfo({ repo: REPO, hubUrl: hub.url, paths: ["model-Q8_0.gguf"], expand: true });
    expect(info.lastCommit.id).toBe(hub.commit(REPO));
    expect(info.lfs?.oid).toBe(sha256(content("model-Q8_0.gguf")));

    const cacheDir = mkdtempSync(join(tmpdir(), "hub-cache-"));
    try {
      const path = await downloadFileToCacheDir({
        repo: REPO,
        hubUrl: hub.url,
        path: "split/model-00001-of-00002.gguf",
        cacheDir,
      });
      expect(path).toBe(
        join(
          cacheDir,
          "models--test-org--tiny-model",
          "snapshots",
          hub.commit(REPO),
          "split/model-00001-of-00002.gguf",
        ),
      );
      expect(sha256(readFileSync(path))).toBe(sha256(content("split/model-00001-of-00002.gguf")));
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  it("fileDownloadInfo: the sha256 as ETag for LFS files, the git oid for others, null for a missing file", async () => {
    const lfs = await fileDownloadInfo({ repo: REPO, hubUrl: hub.url, path: "model-Q4_K_M.gguf" });
    expect(lfs?.size).toBe(300_000);
    expect(lfs?.etag).toBe(`"${sha256(content("model-Q4_K_M.gguf"))}"`);
    const small = await fileDownloadInfo({ repo: REPO, hubUrl: hub.url, path: "config.json" });
    expect(small?.size).toBe(content("config.json").length);
    const oid = execFileSync("git", ["hash-object", "--stdin"], {
      input: content("config.json"),
      encoding: "utf8",
    }).trim();
    expect(small?.etag).toBe(`"${oid}"`);
    expect(await fileDownloadInfo({ repo: REPO, hubUrl: hub.url, path: "no-such-file.gguf" })).toBeNull();
  });

  it("resolve answers an LFS file with the Hub's redirect headers, and the CDN honours ranges", async () => {
    const bytes = content("model-Q4_K_M.gguf");
    const head = await fetch(`${hub.url}/${REPO}/resolve/main/model-Q4_K_M.gguf`, {
      method: "HEAD",
      redirect: "manual",
    });
    expect(head.status).toBe(302);
    expect(head.headers.get("X-Repo-Commit")).toBe(hub.commit(REPO));
    expect(head.headers.get("X-Linked-Etag")).toBe(`"${sha256(bytes)}"`);
    expect(head.headers.get("X-Linked-Size")).toBe(String(bytes.length));
    const cdn = head.headers.get("Location") as string;
    expect(new URL(cdn).host).not.toBe(new URL(hub.url).host);

    const tail = await fetch(cdn, { headers: { Range: "bytes=299990-" } });
    expect(tail.status).toBe(206);
    expect(tail.headers.get("Content-Range")).toBe("bytes 299990-299999/300000");
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(bytes.subarray(299_990));
    const past = await fetch(cdn, { headers: { Range: "bytes=300000-" } });
    expect(past.status).toBe(416);
    expect(past.headers.get("Content-Range")).toBe("bytes */300000");
  });

  it("downloadFile(...).slice(a) fetches exactly the bytes from a, with a Range request", async () => {
    for (const path of ["model-Q4_K_M.gguf", "README.md"]) {
      const bytes = content(path);
      const blob = await downloadFile({ repo: REPO, hubUrl: hub.url, path });
      expect(blob?.size).toBe(bytes.length);
      const from = 7;
      let got = new Uint8Array();
      const requests = await newRequests(async () => {
        got = new Uint8Array(await (blob as Blob).slice(from).arrayBuffer());
      });
      expect(sha256(got)).toBe(sha256(bytes.subarray(from)));
      expect(requests.map((r) => r.range)).toContain(`bytes=${from}-${bytes.length - 1}`);
    }
  });

  it("a gated repository: info and tree for anyone; downloads 401 without a token, 403 before accepting, 200 after", async () => {
    const info = await modelInfo({ name: GATED, hubUrl: hub.url });
    expect(info.gated).toBe("manual");
    const listed: string[] = [];
    for await (const e of listFiles({ repo: GATED, hubUrl: hub.url })) listed.push(e.path);
    expect(listed).toEqual(["model.gguf"]);

    const download = (accessToken?: string) =>
      fileDownloadInfo({ repo: GATED, hubUrl: hub.url, path: "model.gguf", accessToken });
    expect(await statusOf(download())).toBe(401);
    expect(await statusOf(download(NOT_ACCEPTED))).toBe(403);
    const denied = await download(NOT_ACCEPTED).catch((e: HubApiError) => e);
    expect((denied as HubApiError).message).toContain(`${hub.url}/${GATED}`);
    expect((await download(ACCEPTED))?.size).toBe(1000);
    const blob = await downloadFile({
      repo: GATED,
      hubUrl: hub.url,
      path: "model.gguf",
      accessToken: ACCEPTED,
    });
    expect(sha256(new Uint8Array(await (blob as Blob).arrayBuffer()))).toBe(sha256(randomBytes(5, 1000)));
  });

  it("an unknown repository is a 401 to anonymous callers and a 404 to signed-in ones; an unknown token is a 401", async () => {
    expect(await statusOf(modelInfo({ name: "test-org/missing", hubUrl: hub.url }))).toBe(401);
    expect(
      await statusOf(modelInfo({ name: "test-org/missing", hubUrl: hub.url, accessToken: ACCEPTED })),
    ).toBe(404);
    expect(await statusOf(modelInfo({ name: REPO, hubUrl: hub.url, accessToken: "hf_unknown" }))).toBe(401);
    const missing = await fetch(`${hub.url}/test-org/missing/resolve/main/x.gguf`, {
      headers: { Authorization: `Bearer ${ACCEPTED}` },
    });
    expect([missing.status, missing.headers.get("X-Error-Code")]).toEqual([404, "RepoNotFound"]);
    const noFile = await fetch(`${hub.url}/${REPO}/resolve/main/x.gguf`, { method: "HEAD" });
    expect([noFile.status, noFile.headers.get("X-Error-Code")]).toEqual([404, "EntryNotFound"]);
    const noRev = await fetch(`${hub.url}/${REPO}/resolve/v9/config.json`, { method: "HEAD" });
    expect([noRev.status, noRev.headers.get("X-Error-Code")]).toEqual([404, "RevisionNotFound"]);
  });

  it("interruptOnce breaks a stream after N bytes; a ranged request from N completes the file", async () => {
    const path = "model-Q4_K_M.gguf";
    const bytes = content(path);
    hub.interruptOnce(REPO, path, 100_000);
    const blob = (await downloadFile({ repo: REPO, hubUrl: hub.url, path })) as Blob;
    const first = await readAll(blob.stream());
    expect(first.error).toBeDefined();
    expect(first.bytes.length).toBe(100_000);
    let rest = new Uint8Array();
    const requests = await newRequests(async () => {
      rest = new Uint8Array(await blob.slice(first.bytes.length).arrayBuffer());
    });
    expect(requests.map((r) => r.range)).toContain(`bytes=100000-${bytes.length - 1}`);
    expect(sha256(Buffer.concat([first.bytes, rest]))).toBe(sha256(bytes));
  });

  it("hold stalls a response after N bytes until released", async () => {
    const path = "model-Q8_0.gguf";
    const held = hub.hold(REPO, path, 5_000);
    const blob = (await downloadFile({ repo: REPO, hubUrl: hub.url, path })) as Blob;
    const reading = readAll(blob.stream());
    await held.reached;
    let done = false;
    void reading.then(() => {
      done = true;
    });
    await new Promise((ok) => setTimeout(ok, 50));
    expect(done).toBe(false);
    held.release();
    const { bytes, error } = await reading;
    expect(error).toBeUndefined();
    expect(sha256(bytes)).toBe(sha256(content(path)));
  });

  it("corrupt serves the advertised size with bytes that do not match the advertised sha256", async () => {
    const path = "split/model-00002-of-00002.gguf";
    const advertised = (await pathsInfo({ repo: REPO, hubUrl: hub.url, paths: [path] }))[0];
    hub.corrupt(REPO, path);
    const blob = (await downloadFile({ repo: REPO, hubUrl: hub.url, path })) as Blob;
    const served = new Uint8Array(await blob.arrayBuffer());
    expect(served.length).toBe(advertised.size);
    expect(advertised.lfs?.oid).toBe(sha256(content(path)));
    expect(sha256(served)).not.toBe(advertised.lfs?.oid);
  });
});

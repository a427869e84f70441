/**
 * A local server that speaks the Hugging Face Hub's file API the way huggingface.co does, for the test suite: model
 * info, tree listing with Link pagination, paths-info, `resolve`/`raw` (LFS files redirect to a "CDN" on another
 * host name, as the Hub's do), byte ranges, gated repositories, and the Hub's error codes. The download code under
 * test talks to it over real HTTP, through the official clients. Tests can also break a transfer on purpose
 * (interrupt, stall, corrupt) and read the log of every request made.
 *
 * Each repository has one commit, the one `main` and `HEAD` point at; its sha and every oid are real git object ids
 * computed from the files, so they change when the content does.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface HubFile {
  /** Path in the repository, "/"-separated, e.g. "Q4_K_M/model-Q4_K_M-00001-of-00002.gguf". */
  path: string;
  content: Uint8Array;
  /**
   * Stored with Git LFS, so `resolve` redirects to the CDN and the tree lists its sha256. Default, as the Hub's upload
   * decides: *.gguf, *.safetensors and *.bin files, binary files (a NUL byte in the first 512 bytes) and files of
   * 10 MB or more.
   */
  lfs?: boolean;
}

export interface HubRepo {
  /** "org/name". */
  id: string;
  files: HubFile[];
  /** A gated repository: anyone reads its info and tree, only `acceptedTokens` download its files. */
  gated?: "auto" | "manual";
  /** Tokens whose users accepted the gated repository's conditions. */
  acceptedTokens?: string[];
}

export interface HubServerOptions {
  repos: HubRepo[];
  /** The tokens the Hub knows; any other Bearer token gets 401. Default: every token is valid. */
  tokens?: string[];
  /** Entries per page of a tree listing (the Hub's: 1000); a small value makes a test walk the `Link` pages. */
  treePageSize?: number;
}

/** One request, as it reached the server (the CDN's included: their path starts with /cdn/). */
export interface RequestRecord {
  method: string;
  /** Pathname as sent, percent-encoding kept. */
  path: string;
  query: URLSearchParams;
  /** The `Range` header. */
  range?: string;
  /** The `Authorization` header. */
  authorization?: string;
}

/** A response `hold` stalled. */
export interface HeldResponse {
  /** Settles once the response has sent its first `afterBytes` body bytes and stalls. */
  reached: Promise<void>;
  /** Sends the rest. */
  release(): void;
}

export interface HubServer {
  /** The Hub endpoint, http://127.0.0.1:PORT: pass it as `hubUrl` (huggingface.js) or `HF_ENDPOINT`. */
  url: string;
  /** Every request so far, oldest first. */
  requests: RequestRecord[];
  /** The commit sha of a repository (what `main` resolves to). */
  commit(repoId: string): string;
  /** The next GET of the file's bytes that would send more than `afterBytes` body bytes is cut after them (socket destroyed). */
  interruptOnce(repoId: string, path: string, afterBytes: number): void;
  /** Like interruptOnce, but the response stalls after `afterBytes` until released instead of failing. */
  hold(repoId: string, path: string, afterBytes: number): HeldResponse;
  /** From now on the file's bytes are served with the last one flipped: same size, not the advertised sha256. */
  corrupt(repoId: string, path: string): void;
  close(): Promise<void>;
}

/** The `expand` values the Hub accepts on model info (it answers 400 to others). */
const MODEL_EXPAND_OPTIONS = [
  "author",
  "baseModels",
  "cardData",
  "childrenModelCount",
  "config",
  "createdAt",
  "disabled",
  "downloads",
  "downloadsAllTime",
  "evalResults",
  "gated",
  "gguf",
  "inference",
  "inferenceProviderMapping",
  "lastModified",
  "library_name",
  "likes",
  "mask_token",
  "model-index",
  "pipeline_tag",
  "private",
  "resourceGroup",
  "safetensors",
  "sha",
  "siblings",
  "spaces",
  "tags",
  "transformersInfo",
  "trendingScore",
  "usedStorage",
  "widgetData",
  "xetEnabled",
];

/** When every commit was made: 2026-01-01T00:00:00Z. */
const COMMIT_TIME = 1_767_225_600;
const COMMIT_DATE = new Date(COMMIT_TIME * 1000).toISOString();
const COMMIT_TITLE = "Upload files";

interface StoredFile {
  path: string;
  content: Uint8Array;
  /** Git blob id: of the content, or of the LFS pointer for an LFS file. */
  oid: string;
  lfs?: { oid: string; size: number; pointerSize: number; pointer: Uint8Array };
}

interface StoredRepo {
  id: string;
  gated: false | "auto" | "manual";
  acceptedTokens: Set<string>;
  commit: string;
  files: Map<string, StoredFile>;
  /** Directory path ("" for the root) → git tree id. */
  dirs: Map<string, string>;
}

type Fault =
  | { kind: "interrupt"; afterBytes: number }
  | { kind: "hold"; afterBytes: number; reached: () => void; released: Promise<void> };

const sha1 = (data: Uint8Array | string) => createHash("sha1").update(data).digest("hex");
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const gitObjectId = (type: string, body: Uint8Array) =>
  sha1(Buffer.concat([Buffer.from(`${type} ${body.length}\0`), body]));

function defaultLfs(path: string, content: Uint8Array): boolean {
  return (
    /\.(gguf|safetensors|bin)$/.test(path) ||
    content.length >= 10_000_000 ||
    content.subarray(0, 512).includes(0)
  );
}

function storeFile(file: HubFile): StoredFile {
  if (!(file.lfs ?? defaultLfs(file.path, file.content))) {
    return { path: file.path, content: file.content, oid: gitObjectId("blob", file.content) };
  }
  const oid = sha256(file.content);
  const pointer = Buffer.from(
    `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${file.content.length}\n`,
  );
  return {
    path: file.path,
    content: file.content,
    oid: gitObjectId("blob", pointer),
    lfs: { oid, size: file.content.length, pointerSize: pointer.length, pointer },
  };
}

/** Git tree ids of `dir` and every directory below it, into `dirs`; returns the id of `dir`. */
function writeTrees(dir: string, files: StoredFile[], dirs: Map<string, string>): string {
  const prefix = dir === "" ? "" : `${dir}/`;
  const entries = new Map<string, { mode: string; oid: string; sortKey: string }>();
  for (const file of files) {
    if (!file.path.startsWith(prefix)) continue;
    const [name, ...below] = file.path.slice(prefix.length).split("/");
    if (below.length === 0) entries.set(name, { mode: "100644", oid: file.oid, sortKey: name });
    else if (!entries.has(name)) {
      entries.set(name, { mode: "40000", oid: writeTrees(prefix + name, files, dirs), sortKey: `${name}/` });
    }
  }
  // Git orders a tree's entries by name bytes, a directory's name read as if it ended in "/".
  const sorted = [...entries].sort(([, a], [, b]) =>
    Buffer.compare(Buffer.from(a.sortKey), Buffer.from(b.sortKey)),
  );
  const body = Buffer.concat(
    sorted.flatMap(([name, e]) => [Buffer.from(`${e.mode} ${name}\0`), Buffer.from(e.oid, "hex")]),
  );
  const oid = gitObjectId("tree", body);
  dirs.set(dir, oid);
  return oid;
}

function storeRepo(repo: HubRepo): StoredRepo {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo.id))
    throw new Error(`hub-server: repository id "${repo.id}" is not org/name`);
  const files = repo.files.map(storeFile).sort((a, b) => (a.path < b.path ? -1 : 1));
  const dirs = new Map<string, string>();
  const tree = writeTrees("", files, dirs);
  const signature = `vellum-test <test@vellum.invalid> ${COMMIT_TIME} +0000`;
  const commit = gitObjectId(
    "commit",
    Buffer.from(
      `tree ${tree}\nauthor ${signature}\ncommitter ${signature}\n\n${COMMIT_TITLE} to ${repo.id}\n`,
    ),
  );
  return {
    id: repo.id,
    gated: repo.gated ?? false,
    acceptedTokens: new Set(repo.acceptedTokens),
    commit,
    files: new Map(files.map((f) => [f.path, f])),
    dirs,
  };
}

/** An error as the Hub sends it: the message in `X-Error-Message` and in a JSON `{error}` body, the code in `X-Error-Code`. */
function sendError(res: ServerResponse, status: number, message: string, code?: string, headers = {}) {
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "X-Error-Message": message,
    ...(code && { "X-Error-Code": code }),
    ...(status === 401 && { "WWW-Authenticate": 'Bearer realm="Authentication required"' }),
    ...headers,
  });
  res.end(JSON.stringify({ error: message }));
}

function sendJson(res: ServerResponse, body: unknown, headers = {}) {
  res.writeHead(200, { "Content-Type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

/** `Range: bytes=a-b | a- | -n` → [first, last]; undefined to send the whole (no header, or one the server ignores). */
function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | "unsatisfiable" | undefined {
  const m = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    return suffix === 0 || size === 0 ? "unsatisfiable" : [Math.max(0, size - suffix), size - 1];
  }
  const first = Number(m[1]);
  const last = m[2] === "" ? size - 1 : Number(m[2]);
  if (last < first && m[2] !== "") return undefined;
  return first >= size ? "unsatisfiable" : [first, Math.min(last, size - 1)];
}

const decodePath = (path: string) => path.split("/").map(decodeURIComponent).join("/");

const isTrue = (value: string | null) => value !== null && /^(1|true)$/i.test(value);

async function readBody(req: IncomingMessage): Promise<string> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 1_000_000) throw new Error("request body over 1 MB");
  }
  return body;
}

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const repos = new Map(options.repos.map((r) => [r.id, storeRepo(r)]));
  const knownTokens = options.tokens && new Set(options.tokens);
  const pageSize = options.treePageSize ?? 1000;
  const requests: RequestRecord[] = [];
  const faults = new Map<string, Fault[]>();
  const corrupted = new Set<string>();
  const fileKey = (repoId: string, path: string) => `${repoId}\0${path}`;
  let requestCount = 0;
  let hubUrl = "";
  let cdnUrl = "";

  /** The file's bytes as served now: corrupted if a test asked for it. */
  function servedContent(repo: StoredRepo, file: StoredFile): Uint8Array {
    if (!corrupted.has(fileKey(repo.id, file.path)) || file.content.length === 0) return file.content;
    const bytes = Uint8Array.from(file.content);
    bytes[bytes.length - 1] ^= 0xff;
    return bytes;
  }

  /** The fault waiting for a body of `length` bytes of this file, taken off the queue. */
  function takeFault(key: string | undefined, length: number): Fault | undefined {
    const queue = key === undefined ? undefined : faults.get(key);
    const index = queue?.findIndex((f) => length > f.afterBytes) ?? -1;
    return index < 0 ? undefined : queue?.splice(index, 1)[0];
  }

  function addFault(repoId: string, path: string, fault: Fault) {
    const repo = repos.get(repoId);
    if (!repo?.files.has(path)) throw new Error(`hub-server: no file ${repoId}/${path}`);
    const key = fileKey(repoId, path);
    faults.set(key, [...(faults.get(key) ?? []), fault]);
  }

  /** 200 or 206 with the requested bytes (416 past the end), applying a pending fault of `faultKey`. */
  function sendBytes(
    req: IncomingMessage,
    res: ServerResponse,
    bytes: Uint8Array,
    headers: Record<string, string>,
    faultKey?: string,
  ) {
    const range = parseRange(req.headers.range, bytes.length);
    if (range === "unsatisfiable") {
      res.writeHead(416, { ...headers, "Content-Range": `bytes */${bytes.length}` });
      res.end();
      return;
    }
    const [first, last] = range ?? [0, bytes.length - 1];
    const body = bytes.subarray(first, last + 1);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      "Accept-Ranges": "bytes",
      "Content-Type": "application/octet-stream",
      "Content-Length": String(body.length),
      ...(range && { "Content-Range": `bytes ${first}-${last}/${bytes.length}` }),
    });
    const fault = req.method === "GET" ? takeFault(faultKey, body.length) : undefined;
    if (!fault) {
      res.end(req.method === "GET" ? body : undefined);
      return;
    }
    res.flushHeaders();
    res.write(body.subarray(0, fault.afterBytes), () => {
      if (fault.kind === "interrupt") {
        res.destroy();
        return;
      }
      fault.reached();
      void fault.released.then(() => {
        if (!res.destroyed) res.end(body.subarray(fault.afterBytes));
      });
    });
  }

  /** The caller's token; false after answering 401 to one the Hub does not know. */
  function authenticate(req: IncomingMessage, res: ServerResponse): string | undefined | false {
    const header = req.headers.authorization;
    if (header === undefined) return undefined;
    const token = /^Bearer (\S+)$/.exec(header)?.[1];
    if (token !== undefined && (!knownTokens || knownTokens.has(token))) return token;
    sendError(res, 401, "Invalid credentials in Authorization header");
    return false;
  }

  /** The repository, or undefined after answering as the Hub does: 401 to hide it from anonymous callers, else 404. */
  function findRepo(res: ServerResponse, repoId: string, token: string | undefined): StoredRepo | undefined {
    const repo = repos.get(repoId);
    if (repo) return repo;
    if (token === undefined) sendError(res, 401, "Invalid username or password.");
    else sendError(res, 404, "Repository not found", "RepoNotFound");
    return undefined;
  }

  function checkRevision(res: ServerResponse, repo: StoredRepo, revision: string): boolean {
    if (revision === "main" || revision === "HEAD" || revision === repo.commit) return true;
    sendError(res, 404, `Invalid rev id: ${revision}`, "RevisionNotFound");
    return false;
  }

  /** Downloads of a gated repository need a token that accepted its conditions: 401 without one, 403 otherwise. */
  function checkGate(res: ServerResponse, repo: StoredRepo, token: string | undefined): boolean {
    if (!repo.gated || (token !== undefined && repo.acceptedTokens.has(token))) return true;
    if (token === undefined) {
      sendError(
        res,
        401,
        `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
        "GatedRepo",
      );
    } else {
      sendError(
        res,
        403,
        `Access to model ${repo.id} is restricted and you are not in the authorized list. Visit ${hubUrl}/${repo.id} to ask for access.`,
        "GatedRepo",
      );
    }
    return false;
  }

  const lastCommit = (repo: StoredRepo) => ({ id: repo.commit, title: COMMIT_TITLE, date: COMMIT_DATE });

  /** A tree / paths-info entry. */
  function entry(repo: StoredRepo, path: string, expand: boolean) {
    const file = repo.files.get(path);
    const commit = expand ? { lastCommit: lastCommit(repo) } : {};
    if (!file) return { type: "directory", oid: repo.dirs.get(path), size: 0, path, ...commit };
    const lfs = file.lfs && { oid: file.lfs.oid, size: file.lfs.size, pointerSize: file.lfs.pointerSize };
    return { type: "file", oid: file.oid, size: file.content.length, path, ...(lfs && { lfs }), ...commit };
  }

  /** Every path under `dir` (files and directories), or only its children. */
  function listPaths(repo: StoredRepo, dir: string, recursive: boolean): string[] {
    const prefix = dir === "" ? "" : `${dir}/`;
    return [...repo.dirs.keys(), ...repo.files.keys()]
      .filter((p) => p !== "" && p.startsWith(prefix) && (recursive || !p.slice(prefix.length).includes("/")))
      .sort();
  }

  function modelInfo(res: ServerResponse, repo: StoredRepo, query: URLSearchParams) {
    const files = [...repo.files.values()];
    const blobs = isTrue(query.get("blobs"));
    const config = repo.files.get("config.json");
    const full: Record<string, unknown> = {
      _id: sha1(repo.id).slice(0, 24),
      id: repo.id,
      modelId: repo.id,
      author: repo.id.split("/")[0],
      sha: repo.commit,
      lastModified: COMMIT_DATE,
      createdAt: COMMIT_DATE,
      private: false,
      disabled: false,
      gated: repo.gated,
      downloads: 0,
      likes: 0,
      tags: ["gguf", "safetensors"].filter((ext) => files.some((f) => f.path.endsWith(`.${ext}`))),
      ...(config && { config: parseConfig(config.content) }),
      siblings: files.map((f) =>
        blobs
          ? {
              rfilename: f.path,
              blobId: f.oid,
              size: f.content.length,
              ...(f.lfs && { lfs: { sha256: f.lfs.oid, size: f.lfs.size, pointerSize: f.lfs.pointerSize } }),
            }
          : { rfilename: f.path },
      ),
      spaces: [],
      usedStorage: files.reduce((sum, f) => sum + f.content.length, 0),
    };
    const expand = [...query.getAll("expand"), ...query.getAll("expand[]")];
    const invalid = expand.find((e) => !MODEL_EXPAND_OPTIONS.includes(e));
    if (invalid !== undefined) {
      sendError(res, 400, `"expand" must be one of [${MODEL_EXPAND_OPTIONS.join(", ")}], got "${invalid}"`);
      return;
    }
    if (expand.length === 0) return sendJson(res, full);
    // With expand, the Hub sends `_id`, `id` and the fields asked for, those the repository has.
    sendJson(
      res,
      Object.fromEntries(
        Object.entries(full).filter(([k]) => k === "_id" || k === "id" || expand.includes(k)),
      ),
    );
  }

  function tree(req: IncomingMessage, res: ServerResponse, repo: StoredRepo, dir: string, url: URL) {
    if (dir !== "" && !repo.dirs.has(dir)) return sendError(res, 404, "Entry not found", "EntryNotFound");
    const cursor = url.searchParams.get("cursor");
    const offset = cursor === null ? 0 : Number(Buffer.from(cursor, "base64url").toString());
    if (!Number.isInteger(offset) || offset < 0) return sendError(res, 400, "Invalid cursor");
    const paths = listPaths(repo, dir, isTrue(url.searchParams.get("recursive")));
    const expand = isTrue(url.searchParams.get("expand"));
    const page = paths.slice(offset, offset + pageSize).map((p) => entry(repo, p, expand));
    const headers: Record<string, string> = {};
    if (offset + pageSize < paths.length) {
      const next = new URL(req.url ?? "", hubUrl);
      next.searchParams.set("cursor", Buffer.from(String(offset + pageSize)).toString("base64url"));
      headers.Link = `<${next.href}>; rel="next"`;
    }
    sendJson(res, page, headers);
  }

  async function pathsInfo(req: IncomingMessage, res: ServerResponse, repo: StoredRepo) {
    const body = await readBody(req);
    let paths: unknown;
    let expand: unknown;
    if (req.headers["content-type"]?.startsWith("application/json")) {
      ({ paths, expand } = JSON.parse(body));
    } else {
      const form = new URLSearchParams(body);
      paths = form.getAll("paths");
      expand = isTrue(form.get("expand"));
    }
    if (!Array.isArray(paths) || !paths.every((p) => typeof p === "string")) {
      return sendError(res, 400, '"paths" must be an array of strings');
    }
    const found = paths.filter((p) => repo.files.has(p) || (p !== "" && repo.dirs.has(p)));
    sendJson(
      res,
      found.map((p) => entry(repo, p, expand === true)),
    );
  }

  /** `resolve` (or `raw`, the git blob: an LFS file's pointer): small files directly, LFS files by a 302 to the CDN. */
  function resolve(req: IncomingMessage, res: ServerResponse, repo: StoredRepo, path: string, raw: boolean) {
    const file = repo.files.get(path);
    const commit = { "X-Repo-Commit": repo.commit };
    if (!file) return sendError(res, 404, "Entry not found", "EntryNotFound", commit);
    if (raw && file.lfs) return sendBytes(req, res, file.lfs.pointer, { ...commit, ETag: `"${file.oid}"` });
    if (!file.lfs) {
      return sendBytes(
        req,
        res,
        servedContent(repo, file),
        { ...commit, ETag: `"${file.oid}"` },
        fileKey(repo.id, path),
      );
    }
    const location = `${cdnUrl}/cdn/${repo.id}/${file.lfs.oid}/${path.split("/").map(encodeURIComponent).join("/")}`;
    res.writeHead(302, {
      ...commit,
      ETag: `"${file.oid}"`,
      "X-Linked-Etag": `"${file.lfs.oid}"`,
      "X-Linked-Size": String(file.lfs.size),
      Location: location,
      "Content-Type": "text/plain; charset=utf-8",
    });
    res.end(req.method === "GET" ? `Found. Redirecting to ${location}` : undefined);
  }

  /** The CDN: LFS objects by sha256, no authentication (its URLs stand for the Hub's signed ones). */
  function cdn(req: IncomingMessage, res: ServerResponse, repoId: string, oid: string, path: string) {
    const repo = repos.get(repoId);
    const file = repo?.files.get(path);
    if (!repo || file?.lfs?.oid !== oid) {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("NoSuchKey");
      return;
    }
    sendBytes(
      req,
      res,
      servedContent(repo, file),
      {
        ETag: `"${oid}"`,
        "Content-Disposition": `inline; filename*=UTF-8''${encodeURIComponent(path.split("/").pop() ?? "")}`,
        "X-Cache": "Miss from cloudfront",
      },
      fileKey(repoId, path),
    );
  }

  async function route(req: IncomingMessage, res: ServerResponse, url: URL) {
    const method = req.method ?? "GET";
    const cdnMatch = /^\/cdn\/([^/]+\/[^/]+)\/([0-9a-f]{64})\/(.+)$/.exec(url.pathname);
    if (cdnMatch && (method === "GET" || method === "HEAD")) {
      return cdn(req, res, decodePath(cdnMatch[1]), cdnMatch[2], decodePath(cdnMatch[3]));
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)(?:\/(revision|tree|paths-info)\/([^/]+)(\/.*)?)?$/.exec(
      url.pathname,
    );
    const files = /^\/([^/]+\/[^/]+)\/(resolve|raw)\/([^/]+)\/(.+)$/.exec(url.pathname);
    const match = api ?? files;
    const kind = api ? (api[2] ?? "revision") : files?.[2];
    const allowed =
      kind === "paths-info" ? ["POST"] : kind === "resolve" || kind === "raw" ? ["GET", "HEAD"] : ["GET"];
    if (!match || !allowed.includes(method) || (kind !== "tree" && api?.[4] !== undefined)) {
      return sendError(res, 404, "Sorry, we can't find the page you are looking for.");
    }
    const token = authenticate(req, res);
    if (token === false) return;
    const repo = findRepo(res, decodePath(match[1]), token);
    if (!repo) return;
    const revision = decodeURIComponent(match[3] ?? "main");
    if (kind === "resolve" || kind === "raw") {
      if (!checkGate(res, repo, token) || !checkRevision(res, repo, revision)) return;
      return resolve(req, res, repo, decodePath(match[4]), kind === "raw");
    }
    if (!checkRevision(res, repo, revision)) return;
    if (kind === "tree")
      return tree(req, res, repo, decodePath(api?.[4]?.slice(1) ?? "").replace(/\/$/, ""), url);
    if (kind === "paths-info") return pathsInfo(req, res, repo);
    modelInfo(res, repo, url.searchParams);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://hub.invalid");
    requests.push({
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    res.setHeader("X-Request-Id", `Root=hub-server-${++requestCount}`);
    route(req, res, url).catch((err: Error) => {
      if (res.headersSent) res.destroy();
      else sendError(res, 400, err.message);
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  hubUrl = `http://127.0.0.1:${port}`;
  // The CDN is the same server under another host name, so clients treat it as a host of its own, as they treat
  // the Hub's CDN: huggingface_hub reads the file's metadata off the redirect, huggingface.js drops the token.
  cdnUrl = `http://localhost:${port}`;

  return {
    url: hubUrl,
    requests,
    commit(repoId) {
      const repo = repos.get(repoId);
      if (!repo) throw new Error(`hub-server: no repository ${repoId}`);
      return repo.commit;
    },
    interruptOnce(repoId, path, afterBytes) {
      addFault(repoId, path, { kind: "interrupt", afterBytes });
    },
    hold(repoId, path, afterBytes) {
      let reached = () => {};
      let release = () => {};
      const reachedPromise = new Promise<void>((ok) => {
        reached = ok;
      });
      const released = new Promise<void>((ok) => {
        release = ok;
      });
      addFault(repoId, path, { kind: "hold", afterBytes, reached, released });
      return { reached: reachedPromise, release };
    },
    corrupt(repoId, path) {
      if (!repos.get(repoId)?.files.has(path)) throw new Error(`hub-server: no file ${repoId}/${path}`);
      corrupted.add(fileKey(repoId, path));
    },
    close() {
      return new Promise((ok, fail) => {
        server.close((err) => (err ? fail(err) : ok()));
        server.closeAllConnections();
      });
    },
  };
}

/** The part of config.json the Hub shows in model info. */
function parseConfig(content: Uint8Array): unknown {
  try {
    const { architectures, model_type } = JSON.parse(Buffer.from(content).toString("utf8"));
    return { architectures, model_type };
  } catch {
    return {};
  }
}

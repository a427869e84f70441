/**
 * vellum's Hub client against a local Hub (hub-server.ts) over real HTTP: choosing files by tag, downloading into
 * the standard Hugging Face cache, resuming, verifying, locking, gating, offline use, and refusing a model vellum
 * cannot serve after reading only its header.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { InputError } from "../../src/model/errors.js";
import { listCachedModels, removeCachedModel } from "../../src/model/hub/cached-models.js";
import type { HubSettings } from "../../src/model/hub/hub-repo.js";
import { type PullOptions, pullModel, resolveHubModel } from "../../src/model/hub/pull.js";
import { loadModel } from "../../src/model/load.js";
import {
  type Fixtures,
  gatedRepo,
  ggufRepo,
  grantedToken,
  makeFixtures,
  mambaRepo,
  mambaSafetensorsRepo,
  otherToken,
  safetensorsRepo,
  splitRepo,
} from "./hub-fixtures.js";
import { type HubServer, startHubServer } from "./hub-server.js";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const folder = (repo: string) => `models--${repo.replace("/", "--")}`;

let fixtures: Fixtures;
let hub: HubServer;
let cacheDir: string;

beforeAll(() => {
  fixtures = makeFixtures();
});

/** A fresh Hub and an empty cache for each test. */
async function setUp(settings: { treePageSize?: number; tokens?: string[] } = {}) {
  hub = await startHubServer({ repos: fixtures.repos, ...settings });
  cacheDir = mkdtempSync(join(tmpdir(), "vellum-hf-cache-"));
}

afterEach(() => hub?.close());

function options(settings: Partial<HubSettings> = {}): PullOptions {
  return { settings: { endpoint: hub.url, offline: false, ...settings }, cacheDir };
}

/** The requests made while `run` ran. */
async function requestsDuring(run: () => Promise<unknown>) {
  const before = hub.requests.length;
  await run();
  return hub.requests.slice(before);
}

/** The requests that fetched a file's bytes (not the one-byte probe fileDownloadInfo makes). */
const byteRequests = (requests: HubServer["requests"]) =>
  requests.filter((r) => r.path.startsWith("/cdn/") && r.range !== "bytes=0-0");

describe("pull", () => {
  it("pulls by quant tag into the standard cache layout: refs/main, blobs by sha256, snapshot symlinks", async () => {
    await setUp({ treePageSize: 2 });
    const pulled = await pullModel(`hf:${ggufRepo}:q8_0`, options());
    const commit = hub.commit(ggufRepo);
    const repoDir = join(cacheDir, folder(ggufRepo));
    const content = fixtures.content(ggufRepo, "kjv-demo-Q8_0.gguf");

    expect(pulled.path).toBe(join(repoDir, "snapshots", commit, "kjv-demo-Q8_0.gguf"));
    expect(readFileSync(join(repoDir, "refs", "main"), "utf8")).toBe(commit);
    expect(lstatSync(pulled.path).isSymbolicLink()).toBe(true);
    expect(readlinkSync(pulled.path)).toBe(`../../blobs/${sha256(content)}`);
    expect(sha256(readFileSync(pulled.path))).toBe(sha256(content));
    expect(readdirSync(join(repoDir, "blobs"))).toEqual([sha256(content)]);
    expect(pulled.downloaded).toBe(content.length);
    expect(loadModel(pulled.path).config.architecture).toBe("llama");
  });

  it("without a tag picks Q4_K_M as llama.cpp does, skipping an importance matrix listed first", async () => {
    await setUp();
    const pulled = await pullModel(`hf:${ggufRepo}`, options());
    expect(pulled.files).toEqual(["kjv-demo-Q4_K_M.gguf"]);
  });

  it("pulls a file named by its path", async () => {
    await setUp();
    const pulled = await pullModel(`hf:${ggufRepo}/kjv-demo-F16.gguf`, options());
    expect(sha256(readFileSync(pulled.path))).toBe(sha256(fixtures.content(ggufRepo, "kjv-demo-F16.gguf")));
  });

  it("pulls every shard of a split GGUF in a folder, checking all their headers first; the model loads whole", async () => {
    await setUp();
    const shards = [1, 2, 3].map((i) => `Q8_0/kjv-demo-Q8_0-0000${i}-of-00003.gguf`);
    const requests = await requestsDuring(() => pullModel(`hf:${splitRepo}:Q8_0`, options()));
    const pulled = await resolveHubModel(`hf:${splitRepo}:Q8_0`, options());
    expect(pulled.files).toEqual(shards);
    expect(pulled.path).toBe(
      join(cacheDir, folder(splitRepo), "snapshots", hub.commit(splitRepo), shards[0]),
    );
    // The three headers are read before any shard is downloaded.
    const shardOf = (path: string) => shards.find((shard) => path.endsWith(shard));
    expect(
      byteRequests(requests)
        .map((r) => shardOf(r.path))
        .slice(0, 4),
    ).toEqual([...shards, shards[0]]);
    const model = loadModel(pulled.path);
    expect(model.tensors.size).toBe(loadModel(bundledModelPath).tensors.size);
  });

  it("an unknown tag is refused naming the tags the repository offers, before any download", async () => {
    await setUp();
    let error: unknown;
    const requests = await requestsDuring(() =>
      pullModel(`hf:${ggufRepo}:Q2_K`, options()).catch((e) => {
        error = e;
      }),
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/no GGUF file of quant Q2_K .*offers F16, Q4_K_M, Q8_0/);
    expect(byteRequests(requests)).toEqual([]);
  });

  it("pulls a safetensors checkpoint as a snapshot folder that loads", async () => {
    await setUp();
    const pulled = await pullModel(`hf:${safetensorsRepo}`, options());
    expect(pulled.path).toBe(
      join(cacheDir, folder(safetensorsRepo), "snapshots", hub.commit(safetensorsRepo)),
    );
    const model = loadModel(pulled.path);
    expect(model.format).toBe("safetensors");
    const bundled = loadModel(bundledModelPath).config;
    for (const key of ["dim", "nLayers", "nHeads", "nKvHeads", "vocabSize"] as const) {
      expect(model.config[key]).toBe(bundled[key]);
    }
  });
});

describe("interrupted and corrupt downloads", () => {
  const file = "kjv-demo-F16.gguf";
  const ref = `hf:${ggufRepo}/${file}`;
  const blobs = () => join(cacheDir, folder(ggufRepo), "blobs");

  it("resumes a dropped connection from the byte where it stopped", async () => {
    await setUp();
    hub.interruptOnce(ggufRepo, file, 3_000_000);
    const requests = await requestsDuring(() => pullModel(ref, options()));
    // The header check's range, the whole file (cut), then the rest from where it was cut.
    const [header, whole, rest, ...more] = byteRequests(requests).map((r) => r.range);
    expect([header, whole, more]).toEqual(["bytes=0-1048575", undefined, []]);
    const resumedAt = Number(/^bytes=(\d+)-/.exec(rest ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(3_000_000);
    const content = fixtures.content(ggufRepo, file);
    expect(sha256(readFileSync(join(blobs(), sha256(content))))).toBe(sha256(content));
  });

  it("resumes the .incomplete file an earlier run left, asking only for the rest", async () => {
    await setUp();
    const content = fixtures.content(ggufRepo, file);
    mkdirSync(blobs(), { recursive: true });
    writeFileSync(join(blobs(), `${sha256(content)}.incomplete`), content.subarray(0, 2_000_000));
    const requests = await requestsDuring(() => pullModel(ref, options()));
    // The header was checked when the download began: only the rest is asked for.
    expect(byteRequests(requests).map((r) => r.range)).toEqual([`bytes=2000000-${content.length - 1}`]);
    expect(sha256(readFileSync(join(blobs(), sha256(content))))).toBe(sha256(content));
    expect(readdirSync(blobs())).toEqual([sha256(content)]);
  });

  it("rejects bytes whose sha256 is not the Hub's, leaving nothing the cache would trust", async () => {
    await setUp();
    hub.corrupt(ggufRepo, file);
    await expect(pullModel(ref, options())).rejects.toThrow(
      /sha256 [0-9a-f]{64}, but the Hub lists [0-9a-f]{64}/,
    );
    expect(readdirSync(blobs())).toEqual([]);
    expect(existsSync(join(cacheDir, folder(ggufRepo), "snapshots", hub.commit(ggufRepo), file))).toBe(false);
    expect(existsSync(join(cacheDir, folder(ggufRepo), "refs", "main"))).toBe(false);
  });

  it("a corrupt partial file is found out at the end, deleted, and the next pull starts over", async () => {
    await setUp();
    const content = fixtures.content(ggufRepo, file);
    mkdirSync(blobs(), { recursive: true });
    writeFileSync(join(blobs(), `${sha256(content)}.incomplete`), new Uint8Array(1_000_000).fill(7));
    await expect(pullModel(ref, options())).rejects.toThrow(/the download was deleted/);
    expect(readdirSync(blobs())).toEqual([]);
    const pulled = await pullModel(ref, options());
    expect(sha256(readFileSync(pulled.path))).toBe(sha256(content));
  });

  it("huggingface_hub's leftover lock file and partial download do not stop a pull; the partial is resumed", async () => {
    await setUp();
    const content = fixtures.content(ggufRepo, file);
    const locks = join(cacheDir, ".locks", folder(ggufRepo));
    mkdirSync(locks, { recursive: true });
    writeFileSync(join(locks, `${sha256(content)}.lock`), "");
    mkdirSync(blobs(), { recursive: true });
    writeFileSync(join(blobs(), `${sha256(content)}.incomplete`), content.subarray(0, 3_000_000));
    const requests = await requestsDuring(() => pullModel(ref, options()));
    expect(byteRequests(requests).map((r) => r.range)).toEqual([`bytes=3000000-${content.length - 1}`]);
    expect(sha256(readFileSync(join(blobs(), sha256(content))))).toBe(sha256(content));
  });

  it("two concurrent pulls of one file download it once and both get it", async () => {
    await setUp();
    // Past the 1 MiB the header check reads: the hold stalls the download itself.
    const held = hub.hold(ggufRepo, file, 1_500_000);
    const first = pullModel(ref, options());
    await held.reached;
    const second = pullModel(ref, options());
    await new Promise((resolve) => setTimeout(resolve, 300));
    held.release();
    const [a, b] = await Promise.all([first, second]);
    expect(a.path).toBe(b.path);
    // The second waited for the first one's lock, then found the blob.
    expect([a.downloaded, b.downloaded]).toEqual([fixtures.content(ggufRepo, file).length, 0]);
    expect(sha256(readFileSync(a.path))).toBe(sha256(fixtures.content(ggufRepo, file)));
    expect(byteRequests(hub.requests).filter((r) => r.range === undefined)).toHaveLength(1);
  });
});

describe("the cache without the network", () => {
  it("serves a cached model again without a single request", async () => {
    await setUp();
    const ref = `hf:${ggufRepo}:Q8_0`;
    const pulled = await pullModel(ref, options());
    const requests = await requestsDuring(async () => {
      expect((await resolveHubModel(ref, options())).path).toBe(pulled.path);
      expect((await resolveHubModel(`hf:${ggufRepo}/kjv-demo-Q8_0.gguf`, options())).path).toBe(pulled.path);
    });
    expect(requests).toEqual([]);
  });

  it("reuses files another tool put in the cache, in huggingface_hub's layout", async () => {
    await setUp();
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const repoDir = join(cacheDir, folder(ggufRepo));
    const content = fixtures.content(ggufRepo, "kjv-demo-Q4_K_M.gguf");
    mkdirSync(join(repoDir, "blobs"), { recursive: true });
    mkdirSync(join(repoDir, "refs"));
    mkdirSync(join(repoDir, "snapshots", commit), { recursive: true });
    writeFileSync(join(repoDir, "blobs", sha256(content)), content);
    writeFileSync(join(repoDir, "refs", "main"), commit);
    symlinkSync(`../../blobs/${sha256(content)}`, join(repoDir, "snapshots", commit, "kjv-demo-Q4_K_M.gguf"));
    // No Hub at this address: an answer can only come from the cache.
    const pulled = await resolveHubModel(`hf:${ggufRepo}`, options({ endpoint: "http://127.0.0.1:1" }));
    expect(realpathSync(pulled.path)).toBe(join(repoDir, "blobs", sha256(content)));
  });

  it("HF_HUB_OFFLINE uses only the cache, and says so when the model is not there", async () => {
    await setUp();
    const ref = `hf:${ggufRepo}:Q8_0`;
    await expect(resolveHubModel(ref, options({ offline: true }))).rejects.toThrow(
      /not in the Hugging Face cache .* HF_HUB_OFFLINE/,
    );
    await expect(pullModel(ref, options({ offline: true }))).rejects.toThrow(/HF_HUB_OFFLINE/);
    await pullModel(ref, options());
    const requests = await requestsDuring(async () => {
      await resolveHubModel(ref, options({ offline: true }));
      await pullModel(ref, options({ offline: true }));
    });
    expect(requests).toEqual([]);
  });

  it("a ref without a tag is not answered from a cache that lacks the quant llama.cpp would pick", async () => {
    await setUp();
    await pullModel(`hf:${ggufRepo}:Q8_0`, options());
    const pulled = await resolveHubModel(`hf:${ggufRepo}`, options());
    expect(pulled.files).toEqual(["kjv-demo-Q4_K_M.gguf"]);
  });
});

describe("gated repositories", () => {
  const ref = `hf:${gatedRepo}:Q8_0`;

  it("without a token: says the repository is gated, where to accept its conditions, and to set HF_TOKEN", async () => {
    await setUp();
    await expect(pullModel(ref, options())).rejects.toThrow(
      new RegExp(
        `${gatedRepo} is gated; accept its conditions at ${hub.url}/${gatedRepo}, then set HF_TOKEN`,
      ),
    );
  });

  it("with a token that has not accepted them: says to accept them; with one that has: downloads", async () => {
    await setUp({ tokens: [grantedToken, otherToken] });
    await expect(pullModel(ref, options({ token: "hf_revoked" }))).rejects.toThrow(
      /says 401 .*HF_TOKEN was refused \(mistyped or revoked\?\); make a token at/,
    );
    await expect(pullModel(ref, options({ token: otherToken }))).rejects.toThrow(
      /HF_TOKEN's account has not been granted access; accept its conditions at/,
    );
    const pulled = await pullModel(ref, options({ token: grantedToken }));
    expect(sha256(readFileSync(pulled.path))).toBe(sha256(fixtures.content(gatedRepo, "kjv-demo-Q8_0.gguf")));
    const downloads = hub.requests.filter((r) => r.path.includes("/resolve/"));
    expect(downloads.at(-1)?.authorization).toBe(`Bearer ${grantedToken}`);
  });
});

describe("models vellum cannot serve", () => {
  it("are refused after reading only the GGUF header, with ranges", async () => {
    await setUp();
    const size = fixtures.content(mambaRepo, "mamba-Q8_0.gguf").length;
    let error: unknown;
    const requests = await requestsDuring(() =>
      pullModel(`hf:${mambaRepo}:Q8_0`, options()).catch((e) => {
        error = e;
      }),
    );
    expect((error as Error).message).toMatch(/vellum cannot serve .*mamba-Q8_0.gguf.*"mamba"/);
    const fetched = byteRequests(requests).map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.range ?? ""));
    expect(fetched.length).toBeGreaterThan(0);
    const bytes = fetched.reduce((sum, m) => sum + (m ? Number(m[2]) - Number(m[1]) + 1 : size), 0);
    expect(bytes).toBeLessThan(size / 4);
    expect(existsSync(join(cacheDir, folder(mambaRepo), "blobs"))).toBe(false);
  });

  it("are refused after config.json alone for a safetensors checkpoint", async () => {
    await setUp();
    let error: unknown;
    const requests = await requestsDuring(() =>
      pullModel(`hf:${mambaSafetensorsRepo}`, options()).catch((e) => {
        error = e;
      }),
    );
    expect((error as Error).message).toMatch(/vellum cannot serve vellum-test\/mamba, .*"mamba"/);
    const fetched = requests.filter((r) => r.path.includes("/resolve/")).map((r) => r.path.split("/").at(-1));
    expect(new Set(fetched)).toEqual(new Set(["config.json"]));
  });
});

describe("ls and rm", () => {
  it("lists cached models with size, quant, architecture and support; rm removes a quant, then the repository", async () => {
    await setUp();
    await pullModel(`hf:${ggufRepo}:Q8_0`, options());
    await pullModel(`hf:${ggufRepo}:F16`, options());
    await pullModel(`hf:${safetensorsRepo}`, options());
    await pullModel(`hf:${splitRepo}:Q8_0`, options());
    const q8 = fixtures.content(ggufRepo, "kjv-demo-Q8_0.gguf");
    const listed = listCachedModels(cacheDir).map(({ ref, bytes, quant, architecture, servable, main }) => ({
      ref,
      bytes,
      quant,
      architecture,
      servable,
      main,
    }));
    expect(listed).toContainEqual({
      ref: `hf:${ggufRepo}:Q8_0`,
      bytes: q8.length,
      quant: "Q8_0",
      architecture: "llama",
      servable: true,
      main: true,
    });
    expect(listed.map((m) => m.ref).sort()).toEqual(
      [`hf:${ggufRepo}:F16`, `hf:${ggufRepo}:Q8_0`, `hf:${safetensorsRepo}`, `hf:${splitRepo}:Q8_0`].sort(),
    );
    const shardBytes = fixtures.repos
      .find((r) => r.id === splitRepo)
      ?.files.filter((f) => f.path.startsWith("Q8_0/"))
      .reduce((sum, f) => sum + f.content.length, 0);
    expect(listed.find((m) => m.ref === `hf:${splitRepo}:Q8_0`)).toMatchObject({
      bytes: shardBytes,
      quant: "Q8_0",
      architecture: "llama",
      servable: true,
    });
    expect(listed.find((m) => m.ref === `hf:${safetensorsRepo}`)).toMatchObject({
      architecture: "llama",
      servable: true,
    });

    expect(removeCachedModel(`hf:${ggufRepo}:Q8_0`, cacheDir)).toBe(q8.length);
    expect(listCachedModels(cacheDir).map((m) => m.ref)).not.toContain(`hf:${ggufRepo}:Q8_0`);
    expect(readdirSync(join(cacheDir, folder(ggufRepo), "blobs"))).toEqual([
      sha256(fixtures.content(ggufRepo, "kjv-demo-F16.gguf")),
    ]);
    expect(() => removeCachedModel(`hf:${ggufRepo}:Q8_0`, cacheDir)).toThrow(/holds no such model/);
    removeCachedModel(`hf:${ggufRepo}`, cacheDir);
    expect(existsSync(join(cacheDir, folder(ggufRepo)))).toBe(false);
  });
});

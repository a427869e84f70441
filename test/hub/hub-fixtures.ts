/**
 * Repositories for the local Hub, made from the bundled model: a GGUF repository with several quants (and files
 * llama.cpp never picks as a model), a split GGUF, a safetensors checkpoint, a gated copy, and a model of an architecture vellum
 * does not serve. Written once into a temporary folder.
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { readGgufFile, readGgufTensor } from "../../src/model/formats/gguf-reader.js";
import { writeGgufFile } from "../../src/model/formats/gguf-writer.js";
import { writeHfModel } from "../../src/model/formats/hf-model.js";
import { loadModel } from "../../src/model/load.js";
import type { HubFile, HubRepo } from "./hub-server.js";

export const ggufRepo = "vellum-test/kjv-demo-GGUF";
export const safetensorsRepo = "vellum-test/kjv-demo";
export const gatedRepo = "vellum-test/kjv-demo-gated-GGUF";
export const splitRepo = "vellum-test/kjv-demo-split-GGUF";
export const mambaRepo = "vellum-test/mamba-GGUF";
export const mambaSafetensorsRepo = "vellum-test/mamba";
export const grantedToken = "hf_granted_token";
export const otherToken = "hf_other_token";

export interface Fixtures {
  repos: HubRepo[];
  /** A repository's file's content. */
  content(repo: string, path: string): Uint8Array;
}

export function makeFixtures(): Fixtures {
  const dir = mkdtempSync(join(tmpdir(), "vellum-hub-fixtures-"));
  const model = loadModel(bundledModelPath);
  const written = (name: string, write: (path: string) => void): Uint8Array => {
    const path = join(dir, name);
    write(path);
    return readFileSync(path);
  };
  const f16 = readFileSync(bundledModelPath);
  const q8 = written("q8.gguf", (p) => writeGgufModel(model, p, { dtype: "q8_0" }));
  const q4km = written("q4km.gguf", (p) => writeGgufModel(model, p, { dtype: "q4_k_m" }));
  // Three shards in a folder, as repositories of large models keep them.
  const shards = writeGgufModel(model, join(dir, "kjv-demo-Q8_0.gguf"), {
    dtype: "q8_0",
    split: { maxTensors: 20 },
  });
  const mamba = written("mamba.gguf", (p) => {
    const file = readGgufFile(bundledModelPath);
    const metadata = new Map(file.metadata);
    metadata.set("general.architecture", { type: "string", value: "mamba" });
    const tensors = file.tensors.map((t) => ({ ...t, data: () => readGgufTensor(file, t).data }));
    writeGgufFile(p, metadata, tensors);
  });
  const hfDir = join(dir, "hf");
  writeHfModel(model, hfDir, "f16");
  const text = (s: string) => new TextEncoder().encode(s);

  const ggufFiles: HubFile[] = [
    { path: "README.md", content: text("# kjv-demo GGUF\n") },
    { path: "kjv-demo-F16.gguf", content: f16 },
    { path: "kjv-demo-Q4_K_M.gguf", content: q4km },
    { path: "kjv-demo-Q8_0.gguf", content: q8 },
    // Listed first, and holding the tag, but llama.cpp's choice skips importance matrices (and projectors).
    { path: "imatrix-kjv-demo-Q4_K_M.gguf", content: f16 },
  ];
  const repos: HubRepo[] = [
    { id: ggufRepo, files: ggufFiles },
    {
      id: safetensorsRepo,
      files: readdirSync(hfDir).map((name) => ({ path: name, content: readFileSync(join(hfDir, name)) })),
    },
    { id: gatedRepo, files: ggufFiles, gated: "manual", acceptedTokens: [grantedToken] },
    {
      id: splitRepo,
      files: [
        { path: "kjv-demo-F16.gguf", content: f16 },
        ...shards.map((path) => ({ path: `Q8_0/${basename(path)}`, content: readFileSync(path) })),
      ],
    },
    { id: mambaRepo, files: [{ path: "mamba-Q8_0.gguf", content: mamba }] },
    {
      id: mambaSafetensorsRepo,
      files: readdirSync(hfDir).map((name) => {
        const content = readFileSync(join(hfDir, name));
        if (name !== "config.json") return { path: name, content };
        const config = {
          ...JSON.parse(content.toString()),
          model_type: "mamba",
          architectures: ["MambaForCausalLM"],
        };
        return { path: name, content: text(JSON.stringify(config)) };
      }),
    },
  ];
  return {
    repos,
    content(repo, path) {
      const file = repos.find((r) => r.id === repo)?.files.find((f) => f.path === path);
      if (!file) throw new Error(`no fixture ${repo}/${path}`);
      return file.content;
    },
  };
}

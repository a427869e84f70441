/**
 * Choosing a repository's files from a ref, by llama.cpp's rules (common/download.cpp: find_best_model,
 * get_gguf_split_info, get_split_files, gguf_filename_is_model), and parsing refs.
 */
import { describe, expect, it } from "vitest";
import { parseHubRef } from "../../src/model/hub/hub-ref.js";
import { chooseCachedModelFiles, chooseModelFiles, offeredTags } from "../../src/model/hub/model-files.js";

const choose = (ref: string, paths: string[]) => chooseModelFiles(parseHubRef(ref), paths);

describe("hf: refs", () => {
  it("parses repository, quant tag and file forms", () => {
    expect(parseHubRef("hf:Qwen/Qwen3-0.6B")).toEqual({ repo: "Qwen/Qwen3-0.6B" });
    expect(parseHubRef("hf:unsloth/Qwen3-0.6B-GGUF:q4_k_m")).toEqual({
      repo: "unsloth/Qwen3-0.6B-GGUF",
      tag: "Q4_K_M",
    });
    expect(parseHubRef("hf:org/repo/sub/dir/model-Q8_0.gguf")).toEqual({
      repo: "org/repo",
      file: "sub/dir/model-Q8_0.gguf",
    });
  });

  it.each([
    ["org/repo", /does not start with "hf:"/],
    ["hf:org", /no repository name/],
    ["hf:org/repo:Q4:K", /bad quant tag/],
    ["hf:org/re po", /bad organisation or repository name/],
    ["hf:org/repo/README.md", /not a \.gguf/],
    ["hf:org/repo/../x.gguf", /bad file path/],
  ])("refuses %s", (text, message) => {
    expect(() => parseHubRef(text)).toThrow(message);
  });
});

describe("choosing GGUF files as llama.cpp's -hf does", () => {
  const repo = [
    "README.md",
    "Model-IQ4_XS.gguf",
    "Model-Q4_K_M.gguf",
    "Model-Q8_0.gguf",
    "Model-f16.gguf",
    "mmproj-Model-Q4_K_M.gguf",
  ];

  it("matches the tag case-insensitively where it is followed by '.' or '-'", () => {
    expect(choose("hf:o/r:q8_0", repo).files).toEqual(["Model-Q8_0.gguf"]);
    expect(choose("hf:o/r:F16", repo).files).toEqual(["Model-f16.gguf"]);
    expect(choose("hf:o/r:IQ4_XS", repo).files).toEqual(["Model-IQ4_XS.gguf"]);
  });

  it("without a tag takes Q4_K_M, else Q8_0, else the first model file, never a projector", () => {
    expect(choose("hf:o/r", repo).files).toEqual(["Model-Q4_K_M.gguf"]);
    expect(
      choose(
        "hf:o/r",
        repo.filter((p) => !p.includes("Q4_K_M.gguf") || p.startsWith("mmproj")),
      ).files,
    ).toEqual(["Model-Q8_0.gguf"]);
    expect(choose("hf:o/r", ["mmproj-x-f16.gguf", "b-Q5_K_S.gguf", "a-Q6_K.gguf"]).files).toEqual([
      "a-Q6_K.gguf",
    ]);
  });

  it("takes every shard of a split file, in order, from its first shard", () => {
    const split = [
      "Q4_K_M/Model-Q4_K_M-00002-of-00003.gguf",
      "Q4_K_M/Model-Q4_K_M-00001-of-00003.gguf",
      "Q4_K_M/Model-Q4_K_M-00003-of-00003.gguf",
      "Model-Q8_0.gguf",
    ];
    expect(choose("hf:o/r:Q4_K_M", split).files).toEqual([
      "Q4_K_M/Model-Q4_K_M-00001-of-00003.gguf",
      "Q4_K_M/Model-Q4_K_M-00002-of-00003.gguf",
      "Q4_K_M/Model-Q4_K_M-00003-of-00003.gguf",
    ]);
    expect(() => choose("hf:o/r:Q4_K_M", split.slice(1))).toThrow(/lacks shard\(s\) .*00002-of-00003\.gguf/);
    expect(chooseCachedModelFiles(parseHubRef("hf:o/r:Q4_K_M"), split.slice(1))).toBeUndefined();
  });

  it("names the tags a repository offers when the one asked for is not there", () => {
    expect(offeredTags(repo)).toEqual(["F16", "IQ4_XS", "Q4_K_M", "Q8_0"]);
    expect(() => choose("hf:o/r:Q2_K", repo)).toThrow(
      /no GGUF file of quant Q2_K \(it offers F16, IQ4_XS, Q4_K_M, Q8_0\)/,
    );
    expect(() => choose("hf:o/r/nope.gguf", repo)).toThrow(/no such file/);
  });
});

describe("safetensors checkpoints", () => {
  const repo = [
    "config.json",
    "generation_config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "consolidated.safetensors",
    "original/params.json",
    "README.md",
  ];

  it("take the root-level config, tokenizer and HF weight files, not Mistral's consolidated copy", () => {
    expect(choose("hf:o/r", repo)).toEqual({
      format: "safetensors",
      files: [
        "config.json",
        "generation_config.json",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
      ],
    });
  });

  it("a repository with neither GGUF nor safetensors is refused", () => {
    expect(() => choose("hf:o/r", ["README.md", "pytorch_model.bin", "config.json"])).toThrow(
      /neither GGUF model files nor a safetensors checkpoint/,
    );
  });

  it("a cache that lacks the default quant cannot answer for a ref without a tag", () => {
    expect(chooseCachedModelFiles(parseHubRef("hf:o/r"), ["Model-Q8_0.gguf"])).toBeUndefined();
    expect(chooseCachedModelFiles(parseHubRef("hf:o/r"), ["Model-Q4_K_M.gguf"])?.files).toEqual([
      "Model-Q4_K_M.gguf",
    ]);
  });
});

/**
 * Which files of a Hub repository a ref names. GGUF files are chosen by quant tag with llama.cpp's rules
 * (common/download.cpp, find_best_model): the first model file whose path holds TAG followed by "." or "-",
 * without a tag Q4_K_M, then Q8_0, then the first model file; of a split file the first shard, then all its shards.
 * A safetensors checkpoint is the repository's root-level config, tokenizer and weight files, as vLLM downloads them.
 */

import { InputError } from "../errors.js";
import { ggufShardPaths } from "../formats/gguf-split.js";
import { formatHubRef, type HubRef } from "./hub-ref.js";

export type ModelFiles =
  /** `files`: the shards in order; the first is what the loader opens. */
  { format: "gguf"; files: string[] } | { format: "safetensors"; files: string[] };

/** The tags tried, in order, when a ref names none (llama.cpp's). */
const defaultTags = ["Q4_K_M", "Q8_0"];

interface GgufName {
  /** The path without the shard suffix and ".gguf". */
  prefix: string;
  /** The quant tag at the end of the prefix, upper-cased ("" if none). */
  tag: string;
  /** 1-based shard number, and the shard count (1 and 1 for a single file). */
  index: number;
  count: number;
}

const shardSuffix = /^(.+)-(\d{5})-of-(\d{5})$/i;
const tagSuffix = /[-.]([A-Z0-9_]+)$/i;

export function ggufName(path: string): GgufName | undefined {
  if (!path.endsWith(".gguf")) return undefined;
  let prefix = path.slice(0, -".gguf".length);
  let index = 1;
  let count = 1;
  const shard = shardSuffix.exec(prefix);
  if (shard) {
    [prefix, index, count] = [shard[1], Number(shard[2]), Number(shard[3])];
  }
  return { prefix, tag: tagSuffix.exec(prefix)?.[1].toUpperCase() ?? "", index, count };
}

/** A GGUF that holds a model, not a projector, an importance matrix or a draft head (llama.cpp's list). */
function isModelGguf(path: string): boolean {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return (
    ggufName(path) !== undefined &&
    !["mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-"].some((word) => name.includes(word))
  );
}

/** The model GGUFs a listing holds, one entry per file or split set (its first shard). */
function firstShards(paths: readonly string[]): string[] {
  return paths.filter((p) => isModelGguf(p) && ggufName(p)?.index === 1);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function firstWithTag(candidates: readonly string[], tag: string): string | undefined {
  const pattern = new RegExp(`${escapeRegExp(tag)}[.-]`, "i");
  return candidates.find((p) => pattern.test(p));
}

/** The quant tags a listing offers, for messages ("Q4_K_M, Q8_0"). */
export function offeredTags(paths: readonly string[]): string[] {
  return [...new Set(firstShards(paths).map((p) => ggufName(p)?.tag || p))].sort();
}

/** Root-level files of a safetensors checkpoint; undefined if the listing has none. */
function safetensorsFiles(paths: readonly string[]): string[] | undefined {
  const root = paths.filter((p) => !p.includes("/"));
  const weights = root.filter((p) => p.endsWith(".safetensors"));
  if (!root.includes("config.json") || weights.length === 0) return undefined;
  // Mistral repositories also hold the same weights in their own consolidated format.
  const hfWeights = weights.filter((p) => !p.startsWith("consolidated"));
  return [
    ...root.filter((p) => p.endsWith(".json") || p.endsWith(".jinja") || p === "tokenizer.model"),
    ...(hfWeights.length > 0 ? hfWeights : weights),
  ];
}

/** The files `ref` names in a repository whose files are `paths`; an InputError says what it offers instead. */
export function chooseModelFiles(ref: HubRef, paths: readonly string[]): ModelFiles {
  return choose(ref, paths, true) as ModelFiles;
}

/**
 * The files `ref` names among those a cache holds, or undefined where the repository's full listing could answer
 * differently: a file or shard is missing, or no tag was given and neither a safetensors checkpoint nor the first
 * default tag is there.
 */
export function chooseCachedModelFiles(ref: HubRef, paths: readonly string[]): ModelFiles | undefined {
  return choose(ref, paths, false);
}

/** The choice over `paths`, sorted as the Hub lists a tree (path order). */
function choose(ref: HubRef, paths: readonly string[], complete: boolean): ModelFiles | undefined {
  const sorted = [...paths].sort();
  const present = new Set(sorted);
  const shards = (first: string | undefined): ModelFiles | undefined => {
    if (first === undefined) return undefined;
    const files = ggufShardPaths(first);
    const missing = files.filter((f) => !present.has(f));
    if (missing.length === 0) return { format: "gguf", files };
    if (!complete) return undefined;
    throw new InputError(
      `${formatHubRef(ref)}: the repository lacks shard(s) ${missing.join(", ")} of ${first}`,
    );
  };
  const candidates = firstShards(sorted);
  if (ref.file) {
    const chosen = shards(present.has(ref.file) ? ref.file : undefined);
    if (chosen || !complete) return chosen;
    throw new InputError(`${formatHubRef(ref)}: no such file in ${ref.repo}${available(sorted)}`);
  }
  if (ref.tag) {
    const chosen = shards(firstWithTag(candidates, ref.tag));
    if (chosen || !complete) return chosen;
    throw new InputError(
      `${formatHubRef(ref)}: ${ref.repo} has no GGUF file of quant ${ref.tag}${available(sorted)}`,
    );
  }
  const safetensors = safetensorsFiles(sorted);
  if (safetensors) return { format: "safetensors", files: safetensors };
  const preferred = shards(firstWithTag(candidates, defaultTags[0]));
  if (preferred || !complete) return preferred;
  const chosen = shards(firstWithTag(candidates, defaultTags[1]) ?? candidates[0]);
  if (chosen) return chosen;
  throw new InputError(
    `${formatHubRef(ref)}: ${ref.repo} holds neither GGUF model files nor a safetensors checkpoint (config.json and *.safetensors)`,
  );
}

function available(paths: readonly string[]): string {
  const tags = offeredTags(paths);
  return tags.length > 0 ? ` (it offers ${tags.join(", ")})` : " (it holds no GGUF model files)";
}

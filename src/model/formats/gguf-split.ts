/**
 * Split GGUF models, as llama.cpp's llama-gguf-split writes them and its loader reads them: the model in shards
 * `PREFIX-00001-of-0000N.gguf` … `PREFIX-0000N-of-0000N.gguf`, each a complete GGUF file holding the next tensors
 * in order, with its own data section. The first shard holds all the model's metadata; every shard holds
 * `split.no` (its 0-based number, uint16), `split.count` (uint16) and `split.tensors.count` (int32, the tensors
 * of all shards together).
 */

import { existsSync, rmSync } from "node:fs";
import { tensorBytes } from "../dtype.js";
import { InputError } from "../errors.js";
import type { DType } from "../tensor.js";
import { type GgufFile, type GgufValue, ggufDefaultAlignment, readGgufFile } from "./gguf-reader.js";
import { type GgufTensorEntry, writeGgufFile } from "./gguf-writer.js";

const splitNo = "split.no";
const splitCount = "split.count";
const splitTensorsCount = "split.tensors.count";
/** split.no and split.count are uint16. */
const maxShards = 0xffff;

const shardName = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** llama.cpp's llama_split_path: the path of shard `no` (0-based) of `count` of the split model `prefix`. */
export function ggufShardPath(prefix: string, no: number, count: number): string {
  const five = (n: number) => String(n).padStart(5, "0");
  return `${prefix}-${five(no + 1)}-of-${five(count)}.gguf`;
}

/**
 * The paths of all shards of the split model that `path` names by its file name (`…-00002-of-00003.gguf` gives
 * the three), in order; `[path]` for a name that is not a shard's.
 */
export function ggufShardPaths(path: string): string[] {
  const m = shardName.exec(path);
  const count = m ? Number(m[3]) : 0;
  const no = m ? Number(m[2]) - 1 : -1;
  if (!m || no < 0 || no >= count) return [path];
  return Array.from({ length: count }, (_, i) => ggufShardPath(m[1], i, count));
}

/** An integer split key of `file`, or undefined when absent. */
function splitKey(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v.value !== "number" || !Number.isInteger(v.value) || v.value < 0) {
    throw new InputError(`${file.path}: metadata key "${key}" is not a non-negative integer`);
  }
  return v.value;
}

/** A file's place in its split set, from split.no and split.count: shard 0 of 1 for a file that is not split. */
function shardPlace(file: GgufFile): { no: number; count: number } {
  const count = splitKey(file, splitCount);
  if (count === undefined) return { no: 0, count: 1 };
  const no = splitKey(file, splitNo);
  if (count === 0 || no === undefined || no >= count) {
    throw new InputError(
      `${file.path}: metadata keys "${splitNo}" (${no ?? "missing"}) and "${splitCount}" (${count}) do not name a shard of a split model`,
    );
  }
  return { no, count };
}

/**
 * The GGUF files of the model at `path`, first shard first: the file alone unless its `split.count` says it is
 * one shard of several, then all the shards, found beside it by llama.cpp's names (any shard may be given).
 * checkGgufShards checks that they are the whole set.
 */
export function readGgufShards(path: string): GgufFile[] {
  const given = readGgufFile(path);
  const { no, count } = shardPlace(given);
  if (count === 1) return [given];
  const paths = ggufShardPaths(path);
  if (paths.length !== count || paths[no] !== path) {
    throw new InputError(
      `${path}: is shard ${no + 1} of ${count} of a split model, but its name does not end in ${ggufShardPath("", no, count)} as llama.cpp names shards`,
    );
  }
  return paths.map((shardPath, i) => {
    if (i === no) return given;
    if (!existsSync(shardPath)) {
      throw new InputError(`${shardPath}: shard ${i + 1} of ${count} of the split model ${path} is missing`);
    }
    return readGgufFile(shardPath);
  });
}

/**
 * Checks that `shards` are one GGUF file that is not split, or a whole split set in order: each says its own
 * place, and together they hold the first one's `split.tensors.count` tensors.
 */
export function checkGgufShards(shards: readonly GgufFile[]): void {
  const count = shards.length;
  shards.forEach((shard, i) => {
    const place = shardPlace(shard);
    if (place.no !== i || place.count !== count) {
      throw new InputError(
        `${shard.path}: says it is shard ${place.no + 1} of ${place.count} ("${splitNo}", "${splitCount}"), but it is shard ${i + 1} of a set of ${count}`,
      );
    }
  });
  const first = shards[0];
  const expected = splitKey(first, splitTensorsCount);
  const total = shards.reduce((sum, s) => sum + s.tensors.length, 0);
  if (expected !== total && (count > 1 || expected !== undefined)) {
    throw new InputError(
      `${first.path}: metadata key "${splitTensorsCount}" is ${expected ?? "missing"}, but the ${count} shards hold ${total} tensors`,
    );
  }
}

/** When llama-gguf-split starts a new shard: after every `maxTensors` tensors, or before passing `maxBytes`. */
export type GgufSplitLimit = { maxTensors: number } | { maxBytes: number };

/**
 * Groups tensors into shards in order, as llama-gguf-split does: `maxTensors` per shard, or as many as fit in
 * `maxBytes` of tensor data (each counted padded to 32 bytes; metadata not counted). A tensor larger than
 * `maxBytes` gets a shard of its own.
 */
export function planShards<T extends { dtype: DType; shape: number[] }>(
  tensors: T[],
  limit: GgufSplitLimit,
): T[][] {
  const [max, sizeOf] =
    "maxTensors" in limit
      ? [limit.maxTensors, () => 1]
      : [
          limit.maxBytes,
          (t: T) => Math.ceil(tensorBytes(t.dtype, t.shape) / ggufDefaultAlignment) * ggufDefaultAlignment,
        ];
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new RangeError(`a split limit must be a positive integer, got ${max}`);
  }
  const shards: T[][] = [[]];
  let used = 0;
  for (const t of tensors) {
    const size = sizeOf(t);
    if (used + size > max && used > 0) {
      shards.push([]);
      used = 0;
    }
    shards[shards.length - 1].push(t);
    used += size;
  }
  return shards;
}

/**
 * Writes a model as split GGUF shards named after `path` (its `.gguf` ending dropped, as llama-gguf-split names
 * them after its output prefix) and returns their paths. `metadata` goes into the first shard; each shard gets the
 * split keys. A failure removes the shards already written.
 */
export function writeGgufShards(
  path: string,
  metadata: Map<string, GgufValue>,
  tensors: GgufTensorEntry[],
  limit: GgufSplitLimit,
): string[] {
  const shards = planShards(tensors, limit);
  const count = shards.length;
  if (count > maxShards) {
    throw new InputError(
      `${path}: the split would need ${count} shards, more than the ${maxShards} GGUF allows`,
    );
  }
  const prefix = path.replace(/\.gguf$/i, "");
  const written: string[] = [];
  try {
    shards.forEach((shard, no) => {
      const keys = new Map<string, GgufValue>(no === 0 ? metadata : []);
      keys.set(splitNo, { type: "uint16", value: no });
      keys.set(splitCount, { type: "uint16", value: count });
      keys.set(splitTensorsCount, { type: "int32", value: tensors.length });
      const shardPath = ggufShardPath(prefix, no, count);
      writeGgufFile(shardPath, keys, shard);
      written.push(shardPath);
    });
  } catch (e) {
    for (const p of written) rmSync(p, { force: true });
    throw e;
  }
  return written;
}

/** llama-gguf-split's `--split-max-size N(M|G)`: N a positive integer, M = 10^6 bytes, G = 10^9. */
export function parseSplitSize(text: string): number {
  const m = /^([1-9]\d*)([MG])$/.exec(text);
  if (!m)
    throw new InputError(
      `split size "${text}" must be a positive whole number followed by M or G (e.g. 50M, 2G)`,
    );
  return Number(m[1]) * (m[2] === "M" ? 1e6 : 1e9);
}

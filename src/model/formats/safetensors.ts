/**
 * Hugging Face safetensors files, read and written.
 *
 * Layout (all little-endian):
 *   [u64 N][N bytes of UTF-8 JSON header, space-padded][tensor bytes]
 *   header = { "__metadata__"?: { string: string },
 *              "<tensor name>": { "dtype": "F32" | "F16" | "BF16" | …, "shape": [outer, …, inner],
 *                                 "data_offsets": [begin, end] } }   offsets count from the first byte after the header
 * Tensors are row-major, so their bytes are our Tensor.data as is. Big checkpoints are split into shards
 * listed by model.safetensors.index.json ({ "weight_map": { "<tensor name>": "<shard file>" } }).
 *
 * Reading never loads a whole file: the header is parsed once, then each tensor is read at its offset.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileErrorText, InputError, quoteFileString, showFileValue } from "../errors.js";
import { type DType, numElements, type Tensor } from "../tensor.js";

/** Bytes per element of every safetensors dtype, so any valid file parses (only F32, F16, BF16 can be read as tensors). */
const elementBytes: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

const dtypeOfName: Record<string, DType> = { F32: "f32", F16: "f16", BF16: "bf16" };
const nameOfDtype: Partial<Record<DType, string>> = { f32: "F32", f16: "F16", bf16: "BF16" };

/** Headers beyond this are refused before being read (the reference implementation's limit). */
const maxHeaderBytes = 100_000_000;
/**
 * A shard named in model.safetensors.index.json: a plain file name of printable characters (it becomes part of
 * a path, and of messages), at most 255 characters as file systems allow.
 */
const shardFileName = /^[^/\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]{1,243}\.safetensors$/u;
/** One readSync call moves at most this many bytes. */
const readChunkBytes = 1 << 30;

export interface SafetensorsEntry {
  name: string;
  /** The dtype as the file spells it ("F32", "BF16", "I64", …). */
  dtype: string;
  shape: number[];
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  byteLength: number;
}

/** One open safetensors file: its header parsed, its tensors read on demand. Call `close()` when done. */
export class SafetensorsFile {
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
    readonly metadata: Readonly<Record<string, string>>,
    readonly entries: ReadonlyMap<string, SafetensorsEntry>,
  ) {
    this.fd = fd;
  }

  static open(path: string): SafetensorsFile {
    if (!existsSync(path)) throw new InputError(`${path}: file not found`);
    const fd = openSync(path, "r");
    try {
      const { metadata, entries } = readHeader(path, fd);
      return new SafetensorsFile(path, fd, metadata, entries);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  read(name: string): Tensor {
    const entry = this.entries.get(name);
    if (!entry) throw new InputError(`${this.path}: no tensor ${quoteFileString(name)}`);
    const dtype = Object.hasOwn(dtypeOfName, entry.dtype) ? dtypeOfName[entry.dtype] : undefined;
    if (!dtype) {
      throw new InputError(
        `${this.path}: tensor ${quoteFileString(name)} has dtype ${entry.dtype}; only F32, F16 and BF16 are supported`,
      );
    }
    if (this.fd === undefined) throw new Error(`${this.path}: read after close`);
    const data = new Uint8Array(entry.byteLength);
    readFully(this.path, this.fd, data, entry.offset);
    return { dtype, shape: [...entry.shape], data };
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function readHeader(
  path: string,
  fd: number,
): { metadata: Record<string, string>; entries: Map<string, SafetensorsEntry> } {
  const fileSize = fstatSync(fd).size;
  const fail = (problem: string) => new InputError(`${path}: ${problem}`);
  if (fileSize < 8) throw fail(`${fileSize} bytes is too short for a safetensors file`);
  const lengthBytes = new Uint8Array(8);
  readFully(path, fd, lengthBytes, 0);
  const headerLength = Buffer.from(lengthBytes).readBigUInt64LE(0);
  if (headerLength > BigInt(fileSize - 8)) {
    throw fail(`header length ${headerLength} (bytes 0-7) runs past the end of the file (${fileSize} bytes)`);
  }
  if (headerLength > BigInt(maxHeaderBytes))
    throw fail(`header length ${headerLength} (bytes 0-7) is over 100 MB`);
  const headerBytes = new Uint8Array(Number(headerLength));
  readFully(path, fd, headerBytes, 8);
  const dataStart = 8 + headerBytes.length;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw fail(`header (bytes 8-${dataStart - 1}) is not valid UTF-8 JSON: ${fileErrorText(e)}`);
  }
  if (!isObject(header)) throw fail("header is not a JSON object");

  let metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
        throw fail("__metadata__ must map strings to strings");
      }
      metadata = value as Record<string, string>;
      continue;
    }
    entries.set(name, parseEntry(path, name, value, dataStart, fileSize));
  }
  checkNoOverlap(path, [...entries.values()], dataStart);
  return { metadata, entries };
}

function parseEntry(
  path: string,
  name: string,
  value: unknown,
  dataStart: number,
  fileSize: number,
): SafetensorsEntry {
  const fail = (problem: string) => new InputError(`${path}: tensor ${quoteFileString(name)}: ${problem}`);
  if (!isObject(value)) throw fail("header entry is not an object");
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || !Object.hasOwn(elementBytes, dtype))
    throw fail(`unknown dtype ${showFileValue(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw fail(`shape ${showFileValue(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw fail(`data_offsets ${showFileValue(offsets)} is not [begin, end] with 0 ≤ begin ≤ end`);
  }
  const [begin, end] = offsets as number[];
  const byteLength = numElements(shape) * elementBytes[dtype];
  if (end - begin !== byteLength) {
    throw fail(
      `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} [${shape}] needs ${byteLength}`,
    );
  }
  if (dataStart + end > fileSize) {
    throw fail(
      `data ends at byte ${dataStart + end}, past the end of the file (${fileSize} bytes): truncated?`,
    );
  }
  return { name, dtype, shape: shape as number[], offset: dataStart + begin, byteLength };
}

function checkNoOverlap(path: string, entries: SafetensorsEntry[], dataStart: number): void {
  const sorted = [...entries].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1];
    if (sorted[i].offset < previous.offset + previous.byteLength) {
      const range = (e: SafetensorsEntry) =>
        `[${e.offset - dataStart}, ${e.offset - dataStart + e.byteLength}]`;
      throw new InputError(
        `${path}: tensors ${quoteFileString(previous.name)} ${range(previous)} and ${quoteFileString(sorted[i].name)} ${range(sorted[i])} overlap`,
      );
    }
  }
}

/** A model's weights as Hugging Face saves them: model.safetensors, or shards named by model.safetensors.index.json. */
export class SafetensorsCheckpoint {
  private constructor(
    /** The file that lists the tensors (the single file or the index): what error messages name. */
    readonly source: string,
    private readonly fileOf: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  static open(dir: string): SafetensorsCheckpoint {
    const indexPath = join(dir, "model.safetensors.index.json");
    if (existsSync(indexPath)) return SafetensorsCheckpoint.openSharded(dir, indexPath);
    const single = join(dir, "model.safetensors");
    if (!existsSync(single))
      throw new InputError(`${dir}: no model.safetensors or model.safetensors.index.json`);
    const file = SafetensorsFile.open(single);
    return new SafetensorsCheckpoint(single, new Map([...file.entries.keys()].map((name) => [name, file])));
  }

  private static openSharded(dir: string, indexPath: string): SafetensorsCheckpoint {
    let index: unknown;
    try {
      index = JSON.parse(readFileSync(indexPath, "utf8"));
    } catch (e) {
      throw new InputError(`${indexPath}: not valid JSON: ${fileErrorText(e)}`);
    }
    const weightMap = isObject(index) ? index.weight_map : undefined;
    if (!isObject(weightMap)) throw new InputError(`${indexPath}: no "weight_map" object`);

    const shards = new Map<string, SafetensorsFile>();
    const fileOf = new Map<string, SafetensorsFile>();
    try {
      for (const [name, shardName] of Object.entries(weightMap)) {
        if (typeof shardName !== "string" || !shardFileName.test(shardName)) {
          throw new InputError(
            `${indexPath}: tensor ${quoteFileString(name)} maps to ${showFileValue(shardName)}, not a shard file name`,
          );
        }
        let shard = shards.get(shardName);
        if (!shard) {
          const shardPath = join(dir, shardName);
          if (!existsSync(shardPath))
            throw new InputError(
              `${indexPath}: shard ${shardName} (of tensor ${quoteFileString(name)}) not found`,
            );
          shard = SafetensorsFile.open(shardPath);
          shards.set(shardName, shard);
        }
        if (!shard.entries.has(name))
          throw new InputError(`${shard.path}: no tensor ${quoteFileString(name)} (listed in ${indexPath})`);
        fileOf.set(name, shard);
      }
    } catch (e) {
      for (const shard of shards.values()) shard.close();
      throw e;
    }
    return new SafetensorsCheckpoint(indexPath, fileOf);
  }

  names(): IterableIterator<string> {
    return this.fileOf.keys();
  }

  /** The tensor's header entry and the file holding it, or undefined when the checkpoint lacks it. */
  find(name: string): { entry: SafetensorsEntry; file: SafetensorsFile } | undefined {
    const file = this.fileOf.get(name);
    const entry = file?.entries.get(name);
    return file && entry ? { entry, file } : undefined;
  }

  read(name: string): Tensor {
    const file = this.fileOf.get(name);
    if (!file) throw new InputError(`${this.source}: no tensor ${quoteFileString(name)}`);
    return file.read(name);
  }

  close(): void {
    for (const file of new Set(this.fileOf.values())) file.close();
  }
}

/**
 * Writes `tensors` (F32, F16 or BF16) in map order to one safetensors file. The header is padded with
 * spaces to a multiple of 8 bytes so that the data, and every f32 tensor in it, starts 8-byte aligned.
 */
export function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, Tensor>,
  metadata: Record<string, string> = {},
): void {
  // No prototype, so that any tensor name (even "__proto__") is an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const dtype = nameOfDtype[t.dtype];
    if (!dtype)
      throw new InputError(
        `${path}: tensor "${name}" is ${t.dtype}; safetensors holds only F32, F16 and BF16`,
      );
    const expected = numElements(t.shape) * elementBytes[dtype];
    if (t.data.byteLength !== expected) {
      throw new RangeError(
        `tensor "${name}": ${t.data.byteLength} bytes for ${t.dtype} [${t.shape}], expected ${expected}`,
      );
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  let json = Buffer.from(JSON.stringify(header), "utf8");
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, " ")]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));

  const fd = openSync(path, "w");
  try {
    writeFully(fd, length);
    writeFully(fd, json);
    for (const t of tensors.values()) writeFully(fd, t.data);
  } finally {
    closeSync(fd);
  }
}

function readFully(path: string, fd: number, into: Uint8Array, position: number): void {
  for (let done = 0; done < into.length; ) {
    const n = readSync(fd, into, done, Math.min(readChunkBytes, into.length - done), position + done);
    if (n === 0) throw new InputError(`${path}: unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

function writeFully(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function isCount(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}

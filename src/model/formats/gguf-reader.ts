/**
 * GGUF reader (versions 2 and 3, little-endian), and the typed metadata values the writer shares.
 *
 * File layout:
 *   "GGUF" | version: u32 | tensor_count: u64 | metadata_kv_count: u64
 *   metadata_kv_count × (key: string | value_type: u32 | value)
 *   tensor_count × (name: string | n_dims: u32 | n_dims × dim: u64, innermost first | ggml_type: u32 | offset: u64)
 *   zero padding to `general.alignment` (default 32): the data section starts here
 *   tensor data, each at data start + its offset (a multiple of the alignment)
 * A string is length: u64 then UTF-8 bytes; an array is item_type: u32, count: u64, then the items.
 *
 * Only the header is parsed up front, through a small read buffer; each tensor is read later into its own
 * buffer, so loading never holds the file twice and files past 4 GB work. The header can also be parsed from the
 * first bytes of a file held elsewhere (`parseGgufHeader`): the Hub client reads a remote file's header that way.
 */

import { constants as bufferConstants } from "node:buffer";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { dtypeLayout, dtypeOfGgmlType, ggmlTypeName, tensorBytes } from "../dtype.js";
import { InputError, quoteFileString } from "../errors.js";
import type { DType, Tensor } from "../tensor.js";

// ---- typed metadata values ----

/** GGUF value types, indexed by their id in the file. */
// biome-ignore format: one table
export const ggufValueTypes = [
  "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64",
] as const;
export type GgufValueType = (typeof ggufValueTypes)[number];

export type GgufNumberType =
  | "uint8"
  | "int8"
  | "uint16"
  | "int16"
  | "uint32"
  | "int32"
  | "float32"
  | "float64";
export type GgufBigIntType = "uint64" | "int64";

/** A metadata value with its GGUF type: 64-bit integers are bigints, the other numbers are numbers. */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | GgufArray;

export type GgufArray =
  | { type: "array"; itemType: GgufNumberType; value: number[] }
  | { type: "array"; itemType: GgufBigIntType; value: bigint[] }
  | { type: "array"; itemType: "bool"; value: boolean[] }
  | { type: "array"; itemType: "string"; value: string[] }
  | { type: "array"; itemType: "array"; value: GgufArray[] };

export const ggufDefaultAlignment = 32;

// ---- the parsed header ----

export interface GgufTensorInfo {
  name: string;
  dtype: DType;
  /** Outermost-first, as in Tensor (the file lists dimensions innermost-first). */
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  fileOffset: number;
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute byte offset where the data section starts. */
  dataOffset: number;
}

/** Limits that stop a corrupt length from allocating gigabytes; far above anything a real model holds. */
const maxStringBytes = 1 << 26;
/** llama.cpp's GGML_MAX_NAME: tensor names are at most 63 bytes (its reader refuses longer ones too). */
export const ggufMaxTensorNameBytes = 63;
const maxArrayItems = 1 << 24;
const maxArrayNesting = 8;
const maxDims = 4;
const readChunkBytes = 1 << 20;

/** Smallest encoded size of one value of each type: bounds a count by the bytes left in the file. */
// biome-ignore format: one table
const minValueBytes: Record<GgufValueType, number> = {
  uint8: 1, int8: 1, bool: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4,
  uint64: 8, int64: 8, float64: 8, string: 8, array: 12,
};

/** Reads up to `length` bytes at `position` into `buf` from `offset`; returns how many it read (0 at the end). */
type ReadAt = (buf: Buffer, offset: number, length: number, position: number) => number;

/**
 * Sequential little-endian reads from a file through a buffer that is refilled on demand. Every failure
 * becomes an InputError naming the file, the byte offset and what was being read (`context`).
 */
class FileCursor {
  pos = 0;
  context = "header";
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  private bufEnd = 0;

  constructor(
    readonly path: string,
    private readonly readAt: ReadAt,
    readonly size: number,
  ) {}

  fail(problem: string, at = this.pos): never {
    throw new InputError(`${this.path}: offset ${at} (${this.context}): ${problem}`);
  }

  /** Index in `buf` of the next n bytes, which are then consumed. */
  private take(n: number): number {
    if (this.pos + n > this.size) {
      this.fail(`truncated file: needs ${n} bytes but the file ends at byte ${this.size}`);
    }
    if (this.pos < this.bufStart || this.pos + n > this.bufEnd) this.fill(n);
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }

  /** Buffers at least the next n bytes, and up to a chunk ahead. */
  private fill(n: number): void {
    const length = Math.min(Math.max(n, readChunkBytes), this.size - this.pos);
    if (this.buf.length < length) this.buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < n) {
      const read = this.readAt(this.buf, got, length - got, this.pos + got);
      if (read === 0) this.fail("file ended while reading (was it changed?)", this.pos + got);
      got += read;
    }
    this.bufStart = this.pos;
    this.bufEnd = this.pos + got;
  }

  /** Reads n bytes with `get`, which must see the buffer as it is after `take` (a refill replaces it). */
  private read<T>(n: number, get: (buf: Buffer, at: number) => T): T {
    const at = this.take(n);
    return get(this.buf, at);
  }

  u8 = () => this.read(1, (b, at) => b.readUInt8(at));
  i8 = () => this.read(1, (b, at) => b.readInt8(at));
  u16 = () => this.read(2, (b, at) => b.readUInt16LE(at));
  i16 = () => this.read(2, (b, at) => b.readInt16LE(at));
  u32 = () => this.read(4, (b, at) => b.readUInt32LE(at));
  i32 = () => this.read(4, (b, at) => b.readInt32LE(at));
  f32 = () => this.read(4, (b, at) => b.readFloatLE(at));
  f64 = () => this.read(8, (b, at) => b.readDoubleLE(at));
  u64 = () => this.read(8, (b, at) => b.readBigUInt64LE(at));
  i64 = () => this.read(8, (b, at) => b.readBigInt64LE(at));

  bool(): boolean {
    const at = this.pos;
    const b = this.u8();
    if (b > 1) this.fail(`invalid bool value ${b}`, at);
    return b === 1;
  }

  /**
   * A u64 count of items that each take at least `itemBytes`. More than `room` bytes could hold (by default
   * the rest of the file) means a corrupt or truncated file, and is refused before anything is allocated.
   * Read without BigInt: this runs once per string, and BigInt arithmetic would dominate reading a vocabulary.
   */
  count(what: string, itemBytes: number, limit = Number.MAX_SAFE_INTEGER, room?: number): number {
    const at = this.pos;
    // Inexact past 2^53, but such a count fails the checks below anyway.
    const n = this.read(8, (b, i) => b.readUInt32LE(i) + b.readUInt32LE(i + 4) * 2 ** 32);
    const shown = Number.isSafeInteger(n) ? `${n}` : `about ${n.toPrecision(3)}`;
    if (n > (room ?? this.size - this.pos) / itemBytes) {
      this.fail(`${what} ${shown} needs more bytes than the file has left (truncated or corrupt)`, at);
    }
    if (n > limit) this.fail(`${what} ${shown} is over the limit of ${limit}`, at);
    return n;
  }

  /** A string of at most `limit` bytes; a longer length is refused before anything is read or decoded. */
  string(what = "string length", limit = maxStringBytes): string {
    const length = this.count(what, 1, limit);
    return this.read(length, (b, at) => b.toString("utf8", at, at + length));
  }
}

/** Parses the header of the GGUF file at `path`: metadata and tensor infos, all checked against the file size. */
export function readGgufFile(path: string): GgufFile {
  const fd = openForReading(path);
  try {
    const readAt: ReadAt = (buf, offset, length, position) => readSync(fd, buf, offset, length, position);
    return parseHeader(new FileCursor(path, readAt, fstatSync(fd).size));
  } finally {
    closeSync(fd);
  }
}

/** Thrown by `parseGgufHeader` when the header runs past the bytes it was given: read more and parse again. */
export class GgufHeaderTruncated extends Error {}

/**
 * Parses a GGUF header from `head`, the first bytes of a `size`-byte file held elsewhere (`name` names it in
 * errors). The offsets are checked against `size`, as for a local file.
 */
export function parseGgufHeader(head: Uint8Array, size: number, name: string): GgufFile {
  const readAt: ReadAt = (buf, offset, length, position) => {
    const end = Math.min(position + length, head.length);
    if (end <= position) {
      if (head.length < size)
        throw new GgufHeaderTruncated(`${name}: the header is longer than ${head.length} bytes`);
      return 0;
    }
    buf.set(head.subarray(position, end), offset);
    return end - position;
  };
  return parseHeader(new FileCursor(name, readAt, size));
}

function openForReading(path: string): number {
  try {
    return openSync(path, "r");
  } catch (e) {
    throw new InputError(`${path}: cannot open (${(e as Error).message})`);
  }
}

function parseHeader(c: FileCursor): GgufFile {
  const magic = c.u32();
  if (magic !== 0x46554747) {
    c.fail(`not a GGUF file: magic is 0x${magic.toString(16).padStart(8, "0")}, not "GGUF"`, 0);
  }
  const version = c.u32();
  if (version !== 2 && version !== 3) {
    const hint = version === 1 ? " (GGUF v1 is obsolete)" : version > 0xffff ? " (a big-endian GGUF?)" : "";
    c.fail(`unsupported GGUF version ${version}${hint}; versions 2 and 3 are supported`, 4);
  }
  // Each tensor info takes at least 8 + 4 + 8 + 4 + 8 bytes, each key/value pair at least 8 + 4 + 1. Checked
  // against the whole file, so that a truncated file is reported where its data ends.
  const tensorCount = c.count("tensor count", 32, undefined, c.size);
  const kvCount = c.count("metadata key/value count", 13, undefined, c.size);

  const metadata = new Map<string, GgufValue>();
  let alignment = ggufDefaultAlignment;
  for (let i = 0; i < kvCount; i++) {
    c.context = `metadata pair ${i}`;
    const keyAt = c.pos;
    const key = c.string();
    c.context = `metadata key ${quoteFileString(key)}`;
    if (metadata.has(key)) c.fail("duplicate key", keyAt);
    const type = readValueType(c);
    const valueAt = c.pos;
    const value = readValue(c, type, 0);
    metadata.set(key, value);
    if (key === "general.alignment") alignment = checkAlignment(c, value, valueAt);
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  const relativeOffsets: { offset: number; at: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    c.context = `tensor info ${i}`;
    const nameAt = c.pos;
    const name = c.string("tensor name length", ggufMaxTensorNameBytes);
    c.context = `tensor info of ${quoteFileString(name)}`;
    if (names.has(name)) c.fail("duplicate tensor name", nameAt);
    names.add(name);
    const shape = readShape(c);
    const typeAt = c.pos;
    const typeId = c.u32();
    const dtype = dtypeOfGgmlType(typeId);
    if (!dtype) {
      const typeName = ggmlTypeName(typeId);
      c.fail(typeName ? `unsupported tensor type ${typeName}` : `unknown tensor type id ${typeId}`, typeAt);
    }
    const rowLength = shape[shape.length - 1];
    if (rowLength % dtypeLayout[dtype].blockSize !== 0) {
      c.fail(`row length ${rowLength} is not a multiple of the ${dtype} block size`, typeAt);
    }
    const offsetAt = c.pos;
    const offset = c.u64();
    if (offset % BigInt(alignment) !== 0n) {
      c.fail(`data offset ${offset} is not a multiple of the alignment ${alignment}`, offsetAt);
    }
    if (offset > BigInt(c.size)) {
      c.fail(`data offset ${offset} is past the end of the file (${c.size} bytes)`, offsetAt);
    }
    relativeOffsets.push({ offset: Number(offset), at: offsetAt });
    tensors.push({ name, dtype, shape, fileOffset: 0, byteLength: tensorBytes(dtype, shape) });
  }

  const dataOffset = alignUp(c.pos, alignment);
  for (let i = 0; i < tensors.length; i++) tensors[i].fileOffset = dataOffset + relativeOffsets[i].offset;
  // Each tensor's data must end before the next one's (in file order) starts, and before the file ends: a size
  // that does not match the type and shape shows as one or the other.
  const byOffset = tensors
    .map((t, i) => ({ t, at: relativeOffsets[i].at }))
    .sort((a, b) => a.t.fileOffset - b.t.fileOffset);
  for (let i = 0; i < byOffset.length; i++) {
    const { t, at } = byOffset[i];
    const next = byOffset[i + 1]?.t;
    const end = t.fileOffset + t.byteLength;
    const data = `${t.dtype} data of shape [${t.shape}] (bytes ${t.fileOffset}..${end})`;
    c.context = `tensor info of ${quoteFileString(t.name)}`;
    if (next && end > next.fileOffset) {
      c.fail(
        `${data} overlaps the data of tensor ${quoteFileString(next.name)} (from byte ${next.fileOffset})`,
        at,
      );
    }
    if (end > c.size) c.fail(`${data} runs past the end of the file (${c.size} bytes)`, at);
  }
  return { path: c.path, version, metadata, tensors, alignment, dataOffset };
}

function readValueType(c: FileCursor): GgufValueType {
  const at = c.pos;
  const id = c.u32();
  const type = ggufValueTypes[id];
  if (type === undefined) c.fail(`unknown metadata value type ${id}`, at);
  return type;
}

function readValue(c: FileCursor, type: GgufValueType, depth: number): GgufValue {
  switch (type) {
    case "uint8":
      return { type, value: c.u8() };
    case "int8":
      return { type, value: c.i8() };
    case "uint16":
      return { type, value: c.u16() };
    case "int16":
      return { type, value: c.i16() };
    case "uint32":
      return { type, value: c.u32() };
    case "int32":
      return { type, value: c.i32() };
    case "float32":
      return { type, value: c.f32() };
    case "float64":
      return { type, value: c.f64() };
    case "uint64":
      return { type, value: c.u64() };
    case "int64":
      return { type, value: c.i64() };
    case "bool":
      return { type, value: c.bool() };
    case "string":
      return { type, value: c.string() };
    case "array":
      return readArray(c, depth);
  }
}

function readArray(c: FileCursor, depth: number): GgufArray {
  if (depth >= maxArrayNesting) c.fail(`arrays nested more than ${maxArrayNesting} deep`);
  const itemType = readValueType(c);
  const n = c.count("array length", minValueBytes[itemType], maxArrayItems);
  const items = <T>(read: () => T): T[] => Array.from({ length: n }, () => read());
  switch (itemType) {
    case "string":
      return { type: "array", itemType, value: items(() => c.string()) };
    case "bool":
      return { type: "array", itemType, value: items(() => c.bool()) };
    case "uint64":
      return { type: "array", itemType, value: items(c.u64) };
    case "int64":
      return { type: "array", itemType, value: items(c.i64) };
    case "array":
      return { type: "array", itemType, value: items(() => readArray(c, depth + 1)) };
    default:
      return { type: "array", itemType, value: items(numberReaders(c)[itemType]) };
  }
}

function numberReaders(c: FileCursor): Record<GgufNumberType, () => number> {
  return {
    uint8: c.u8,
    int8: c.i8,
    uint16: c.u16,
    int16: c.i16,
    uint32: c.u32,
    int32: c.i32,
    float32: c.f32,
    float64: c.f64,
  };
}

function checkAlignment(c: FileCursor, value: GgufValue, at: number): number {
  if (value.type !== "uint32") c.fail(`must be a uint32, not ${value.type}`, at);
  const a = value.value;
  if (a === 0 || (a & (a - 1)) !== 0) c.fail(`alignment ${a} is not a power of two`, at);
  return a;
}

/** n_dims then dims innermost-first; returns them outermost-first. */
function readShape(c: FileCursor): number[] {
  const at = c.pos;
  const nDims = c.u32();
  if (nDims < 1 || nDims > maxDims) c.fail(`tensor has ${nDims} dimensions (1 to ${maxDims} are valid)`, at);
  const dims: number[] = [];
  let elements = 1;
  for (let d = 0; d < nDims; d++) {
    const dimAt = c.pos;
    const dim = c.u64();
    elements *= Number(dim);
    if (dim === 0n || elements > Number.MAX_SAFE_INTEGER) c.fail(`invalid dimension ${dim}`, dimAt);
    dims.push(Number(dim));
  }
  return dims.reverse();
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Reads one tensor's data from the file into its own buffer. */
export function readGgufTensor(file: GgufFile, info: GgufTensorInfo): Tensor {
  if (info.byteLength > bufferConstants.MAX_LENGTH) {
    throw new InputError(
      `${file.path}: tensor ${quoteFileString(info.name)} has ${info.byteLength} bytes, more than one buffer can hold`,
    );
  }
  const data = new Uint8Array(info.byteLength);
  const fd = openForReading(file.path);
  try {
    // readSync moves at most 2 GiB per call.
    for (let got = 0; got < data.length; ) {
      const read = readSync(fd, data, got, Math.min(data.length - got, 1 << 30), info.fileOffset + got);
      if (read === 0) {
        throw new InputError(
          `${file.path}: file ended at byte ${info.fileOffset + got} inside tensor ${quoteFileString(info.name)}`,
        );
      }
      got += read;
    }
  } finally {
    closeSync(fd);
  }
  return { dtype: info.dtype, shape: [...info.shape], data };
}

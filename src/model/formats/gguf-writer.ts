/**
 * GGUF v3 writer: the layout gguf-reader.ts describes, as llama.cpp and gguf-py write it. The header
 * (metadata and tensor infos) is built in memory; tensor data is then streamed one tensor at a time, each
 * padded with zeros to the alignment, so a converted model never sits in memory whole.
 */
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { ggmlTypeOf, tensorBytes } from "../dtype.js";
import type { DType } from "../tensor.js";
import {
  type GgufArray,
  type GgufNumberType,
  type GgufValue,
  type GgufValueType,
  ggufDefaultAlignment,
  ggufMaxTensorNameBytes,
  ggufValueTypes,
} from "./gguf-reader.js";

export interface GgufTensorEntry {
  name: string;
  dtype: DType;
  /** Outermost-first, as in Tensor. */
  shape: number[];
  /** Called when the writer reaches this tensor, so that only one converted tensor is in memory at a time. */
  data: () => Uint8Array;
}

const utf8 = new TextEncoder();

/** Integer ranges of the GGUF integer types that are JS numbers. */
const intRanges: Partial<Record<GgufNumberType, [number, number]>> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};

/**
 * Writes a GGUF v3 file. The alignment is metadata `general.alignment` when present (a uint32 power of two),
 * else 32. Bad arguments throw RangeError; a partly written file is removed.
 */
export function writeGgufFile(
  path: string,
  metadata: Map<string, GgufValue>,
  tensors: GgufTensorEntry[],
): void {
  const alignment = alignmentOf(metadata);
  const header = new ByteSink();
  header.bytes(utf8.encode("GGUF"));
  header.u32(3);
  header.size(tensors.length);
  header.size(metadata.size);
  for (const [key, value] of metadata) {
    header.string(key);
    header.u32(ggufValueTypes.indexOf(value.type));
    writeValue(header, key, value);
  }
  let dataSize = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    checkTensorEntry(t, names);
    header.string(t.name);
    header.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) header.size(t.shape[d]); // GGUF lists innermost first
    header.u32(ggmlTypeOf[t.dtype]);
    header.size(dataSize);
    dataSize = alignUp(dataSize + tensorBytes(t.dtype, t.shape), alignment);
  }

  const fd = openSync(path, "w");
  try {
    const out = new FileOut(fd, alignment);
    out.write(header.result());
    out.pad();
    for (const t of tensors) {
      const data = t.data();
      const expected = tensorBytes(t.dtype, t.shape);
      if (data.byteLength !== expected) {
        throw new RangeError(
          `GGUF tensor "${t.name}": ${data.byteLength} bytes of data, expected ${expected}`,
        );
      }
      out.write(data);
      out.pad();
    }
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw e;
  }
}

function alignmentOf(metadata: Map<string, GgufValue>): number {
  const v = metadata.get("general.alignment");
  if (v === undefined) return ggufDefaultAlignment;
  if (v.type !== "uint32" || v.value === 0 || (v.value & (v.value - 1)) !== 0) {
    throw new RangeError(`GGUF general.alignment must be a uint32 power of two, got ${v.type} ${v.value}`);
  }
  return v.value;
}

function checkTensorEntry(t: GgufTensorEntry, names: Set<string>): void {
  const nameBytes = utf8.encode(t.name).length;
  if (nameBytes === 0 || nameBytes > ggufMaxTensorNameBytes) {
    throw new RangeError(`GGUF tensor name "${t.name}" must be 1 to ${ggufMaxTensorNameBytes} bytes`);
  }
  if (names.has(t.name)) throw new RangeError(`GGUF tensor "${t.name}" appears twice`);
  names.add(t.name);
  if (t.shape.length < 1 || t.shape.length > 4 || !t.shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new RangeError(`GGUF tensor "${t.name}": invalid shape [${t.shape}]`);
  }
}

function writeValue(sink: ByteSink, key: string, v: GgufValue): void {
  if (v.type === "array") {
    writeArray(sink, key, v);
    return;
  }
  writeScalar(sink, key, v.type, v.value);
}

function writeArray(sink: ByteSink, key: string, a: GgufArray): void {
  sink.u32(ggufValueTypes.indexOf(a.itemType));
  sink.size(a.value.length);
  for (const item of a.value) {
    if (a.itemType === "array") writeArray(sink, key, item as GgufArray);
    else writeScalar(sink, key, a.itemType, item as number | bigint | boolean | string);
  }
}

function writeScalar(
  sink: ByteSink,
  key: string,
  type: GgufValueType,
  value: number | bigint | boolean | string,
): void {
  const bad = () => new RangeError(`GGUF metadata "${key}": ${String(value)} is not a valid ${type}`);
  switch (type) {
    case "string":
      if (typeof value !== "string") throw bad();
      sink.string(value);
      return;
    case "bool":
      if (typeof value !== "boolean") throw bad();
      sink.number("uint8", value ? 1 : 0);
      return;
    case "uint64":
      if (typeof value !== "bigint" || BigInt.asUintN(64, value) !== value) throw bad();
      sink.u64(value);
      return;
    case "int64":
      if (typeof value !== "bigint" || BigInt.asIntN(64, value) !== value) throw bad();
      sink.i64(value);
      return;
    case "array":
      throw bad();
    default: {
      const range = intRanges[type];
      if (typeof value !== "number") throw bad();
      if (range && !(Number.isInteger(value) && value >= range[0] && value <= range[1])) throw bad();
      sink.number(type, value);
    }
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Size and little-endian DataView setter of each number type. */
const numberLayout: Record<
  GgufNumberType,
  { bytes: number; set: (view: DataView, at: number, v: number) => void }
> = {
  uint8: { bytes: 1, set: (view, at, v) => view.setUint8(at, v) },
  int8: { bytes: 1, set: (view, at, v) => view.setInt8(at, v) },
  uint16: { bytes: 2, set: (view, at, v) => view.setUint16(at, v, true) },
  int16: { bytes: 2, set: (view, at, v) => view.setInt16(at, v, true) },
  uint32: { bytes: 4, set: (view, at, v) => view.setUint32(at, v, true) },
  int32: { bytes: 4, set: (view, at, v) => view.setInt32(at, v, true) },
  float32: { bytes: 4, set: (view, at, v) => view.setFloat32(at, v, true) },
  float64: { bytes: 8, set: (view, at, v) => view.setFloat64(at, v, true) },
};

/** A growable little-endian byte buffer for the header. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private length = 0;

  /** Where the next n bytes go; may replace `buf` and `view`, so call it before reading either. */
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  number(type: GgufNumberType, v: number): void {
    const { bytes, set } = numberLayout[type];
    const at = this.room(bytes);
    set(this.view, at, v);
  }
  u32(v: number): void {
    this.number("uint32", v);
  }
  /** A count, length or offset as a u64 (written as two u32 halves: no BigInt per string). */
  size(n: number): void {
    const at = this.room(8);
    this.view.setUint32(at, n % 2 ** 32, true);
    this.view.setUint32(at + 4, Math.floor(n / 2 ** 32), true);
  }
  u64(v: bigint): void {
    const at = this.room(8);
    this.view.setBigUint64(at, v, true);
  }
  i64(v: bigint): void {
    const at = this.room(8);
    this.view.setBigInt64(at, v, true);
  }
  bytes(b: Uint8Array): void {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  string(s: string): void {
    const b = utf8.encode(s);
    this.size(b.length);
    this.bytes(b);
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** Sequential writes to a file, tracking the position so that padding can align it. */
class FileOut {
  private position = 0;
  private readonly zeros: Uint8Array;

  constructor(
    private readonly fd: number,
    private readonly alignment: number,
  ) {
    this.zeros = new Uint8Array(alignment);
  }

  write(b: Uint8Array): void {
    for (let done = 0; done < b.length; ) {
      done += writeSync(this.fd, b, done, Math.min(b.length - done, 1 << 30), this.position + done);
    }
    this.position += b.length;
  }

  pad(): void {
    this.write(this.zeros.subarray(0, alignUp(this.position, this.alignment) - this.position));
  }
}

import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { GgmlType, readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { expectedTensors, type ModelConfig, plainConfig, tensorNames } from "../../src/model/config.js";
import {
  dequantize,
  dtypes,
  ggmlTypeName,
  ggmlTypeOf,
  quantize,
  tensorBytes,
} from "../../src/model/dtype.js";
import { InputError } from "../../src/model/errors.js";
import { loadGgufModel, writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { type GgufValue, readGgufFile, readGgufTensor } from "../../src/model/formats/gguf-reader.js";
import { type GgufTensorEntry, writeGgufFile } from "../../src/model/formats/gguf-writer.js";
import type { LoadedModel } from "../../src/model/model.js";
import { fileTypeOf, tensorType, type WeightType, weightTypes } from "../../src/model/quant/mixes.js";
import type { DType, Tensor } from "../../src/model/tensor.js";
import { byteToChar } from "../../src/model/tokenizer/byte-unicode.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import { sentencePieceVocab } from "../../src/model/tokenizer/sentencepiece.js";
import { TokenType, type VocabSpec } from "../../src/model/tokenizer/tokenizer.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vellum-gguf-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic values in [-1, 1). */
function randomValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** dtype, shape and bytes, compared fast (toEqual walks typed arrays element by element). */
const summary = (t: Tensor | undefined) =>
  t && { dtype: t.dtype, shape: t.shape, hex: Buffer.from(t.data).toString("hex") };

const entry = (name: string, t: Tensor): GgufTensorEntry => ({
  name,
  dtype: t.dtype,
  shape: t.shape,
  data: () => t.data,
});

/** Message of the InputError that `fn` throws. */
function inputErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return (e as Error).message;
  }
  throw new Error("expected an InputError, nothing was thrown");
}

/** One value of every type (float32 values exact in float32, so that they read back equal). */
const everyType = new Map<string, GgufValue>([
  ["t.u8", { type: "uint8", value: 255 }],
  ["t.i8", { type: "int8", value: -128 }],
  ["t.u16", { type: "uint16", value: 65535 }],
  ["t.i16", { type: "int16", value: -32768 }],
  ["t.u32", { type: "uint32", value: 4294967295 }],
  ["t.i32", { type: "int32", value: -2147483648 }],
  ["t.f32", { type: "float32", value: -1.5 }],
  ["t.f64", { type: "float64", value: Math.PI }],
  ["t.bool_true", { type: "bool", value: true }],
  ["t.bool_false", { type: "bool", value: false }],
  ["t.str", { type: "string", value: "héllo ▁wörld 🦙" }],
  ["t.empty_str", { type: "string", value: "" }],
  ["t.u64", { type: "uint64", value: 2n ** 64n - 1n }],
  ["t.i64", { type: "int64", value: -(2n ** 63n) }],
  ["t.arr_u8", { type: "array", itemType: "uint8", value: [0, 1, 255] }],
  ["t.arr_i8", { type: "array", itemType: "int8", value: [-1, 127] }],
  ["t.arr_u16", { type: "array", itemType: "uint16", value: [65535] }],
  ["t.arr_i16", { type: "array", itemType: "int16", value: [-2, 3] }],
  ["t.arr_u32", { type: "array", itemType: "uint32", value: [7, 4000000000] }],
  ["t.arr_i32", { type: "array", itemType: "int32", value: [1, -6, 3] }],
  ["t.arr_f32", { type: "array", itemType: "float32", value: [0.25, 0.5, Math.fround(3e38)] }],
  ["t.arr_f64", { type: "array", itemType: "float64", value: [1e-300, -0.1] }],
  ["t.arr_bool", { type: "array", itemType: "bool", value: [true, false, true] }],
  ["t.arr_str", { type: "array", itemType: "string", value: ["a", "", "<0x0A>", "▁the"] }],
  ["t.arr_u64", { type: "array", itemType: "uint64", value: [0n, 2n ** 40n] }],
  ["t.arr_i64", { type: "array", itemType: "int64", value: [-5n, 2n ** 62n] }],
  ["t.arr_empty", { type: "array", itemType: "float32", value: [] }],
  [
    "t.arr_nested",
    {
      type: "array",
      itemType: "array",
      value: [
        { type: "array", itemType: "uint8", value: [1, 2] },
        { type: "array", itemType: "string", value: ["x"] },
        { type: "array", itemType: "array", value: [{ type: "array", itemType: "int64", value: [9n] }] },
      ],
    },
  ],
]);

describe("write → read round trip", () => {
  test("every metadata value type, in order", () => {
    const path = join(dir, "every-type.gguf");
    writeGgufFile(path, everyType, []);
    const file = readGgufFile(path);
    expect(file.version).toBe(3);
    expect([...file.metadata.keys()]).toEqual([...everyType.keys()]);
    expect(file.metadata).toEqual(everyType);
    expect(file.tensors).toEqual([]);
    expect(file.dataOffset % 32).toBe(0);
  });

  test("tensors of every dtype and rank, each aligned, with the default and a custom alignment", () => {
    for (const alignment of [32, 64]) {
      const tensors = new Map<string, Tensor>();
      dtypes.forEach((dtype, i) => {
        // 256 values a row: whole blocks of every type.
        tensors.set(`w.${dtype}`, quantize(randomValues(3 * 256, i), [3, 256], dtype));
        tensors.set(`v.${dtype}`, quantize(randomValues(256, i + 10), [256], dtype));
      });
      tensors.set("r3", quantize(randomValues(2 * 3 * 5, 7), [2, 3, 5], "f32"));
      tensors.set("r4", quantize(randomValues(2 * 2 * 3 * 4, 8), [2, 2, 3, 4], "f16"));
      const metadata = new Map<string, GgufValue>([
        ["general.alignment", { type: "uint32", value: alignment }],
      ]);
      const path = join(dir, `tensors-${alignment}.gguf`);
      writeGgufFile(
        path,
        metadata,
        [...tensors].map(([name, t]) => entry(name, t)),
      );

      const file = readGgufFile(path);
      expect(file.alignment).toBe(alignment);
      expect(file.dataOffset % alignment).toBe(0);
      expect(file.tensors.map((t) => t.name)).toEqual([...tensors.keys()]);
      for (const info of file.tensors) {
        const original = tensors.get(info.name) as Tensor;
        expect((info.fileOffset - file.dataOffset) % alignment).toBe(0);
        expect(info.byteLength).toBe(tensorBytes(original.dtype, original.shape));
        const read = readGgufTensor(file, info);
        expect(read.dtype).toBe(original.dtype);
        expect(read.shape).toEqual(original.shape);
        expect(Buffer.from(read.data).equals(Buffer.from(original.data)), info.name).toBe(true);
      }
    }
  });

  test("metadata larger than the writer's and the reader's buffers (a 150k-token vocabulary)", () => {
    const n = 150_000;
    const metadata = new Map<string, GgufValue>([
      [
        "tokenizer.ggml.tokens",
        { type: "array", itemType: "string", value: Array.from({ length: n }, (_, i) => `▁tok${i}`) },
      ],
      [
        "tokenizer.ggml.scores",
        { type: "array", itemType: "float32", value: Array.from({ length: n }, (_, i) => -i) },
      ],
      [
        "tokenizer.ggml.token_type",
        { type: "array", itemType: "int32", value: Array.from({ length: n }, (_, i) => i % 7) },
      ],
      ["after", { type: "uint64", value: 12345678901234n }],
    ]);
    const path = join(dir, "big-metadata.gguf");
    writeGgufFile(path, metadata, [entry("t", quantize(randomValues(32, 1), [32], "q4_0"))]);
    expect(statSync(path).size).toBeGreaterThan(3 * 2 ** 20);
    const file = readGgufFile(path);
    expect(file.metadata).toEqual(metadata);
    expect(file.tensors[0].shape).toEqual([32]);
  });

  test("GGUF v2 (same layout as v3) reads too", () => {
    const path = join(dir, "v2.gguf");
    writeGgufFile(path, everyType, []);
    const bytes = readFileSync(path);
    bytes.writeUInt32LE(2, 4);
    writeFileSync(path, bytes);
    const file = readGgufFile(path);
    expect(file.version).toBe(2);
    expect(file.metadata).toEqual(everyType);
  });

  test("the writer refuses values that do not fit their type, and leaves no file behind", () => {
    const path = join(dir, "refused.gguf");
    const bad: [string, GgufValue][] = [
      ["x", { type: "uint8", value: 256 }],
      ["x", { type: "int32", value: 1.5 }],
      ["x", { type: "uint32", value: -1 }],
      ["x", { type: "uint64", value: -1n }],
      ["x", { type: "int64", value: 2n ** 63n }],
      ["x", { type: "array", itemType: "int16", value: [40000] }],
      ["general.alignment", { type: "uint32", value: 48 }],
    ];
    for (const kv of bad)
      expect(
        () => writeGgufFile(path, new Map([kv]), []),
        JSON.stringify(kv, (_, v) => String(v)),
      ).toThrow(RangeError);
    const t = quantize(new Float32Array(4), [4], "f32");
    expect(() => writeGgufFile(path, new Map(), [entry("a", t), entry("a", t)])).toThrow(/twice/);
    expect(() => writeGgufFile(path, new Map(), [entry("x".repeat(64), t)])).toThrow(/63 bytes/);
    expect(() =>
      writeGgufFile(path, new Map(), [{ ...entry("a", t), data: () => new Uint8Array(3) }]),
    ).toThrow(/3 bytes of data, expected 16/);
    expect(existsSync(path)).toBe(false);
  });
});

/** Flattens node-llama-cpp's nested metadata object back to dotted keys. */
function flatten(obj: Record<string, unknown>, prefix = ""): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      for (const [k2, v2] of flatten(v as Record<string, unknown>, `${prefix}${k}.`)) out.set(k2, v2);
    } else out.set(`${prefix}${k}`, v);
  }
  return out;
}

/** Our typed value as plain data, the way node-llama-cpp returns it. */
function plain(v: GgufValue): unknown {
  if (v.type !== "array") return v.value;
  return v.itemType === "array" ? v.value.map(plain) : v.value;
}

describe("node-llama-cpp's GGUF parser reads what the writer writes (independent check)", () => {
  test("ggml type ids and names", () => {
    for (const [name, id] of Object.entries(GgmlType)) {
      if (typeof id === "number" && id <= 39) expect(ggmlTypeName(id), name).toBe(name);
    }
  });

  test("metadata of every type", async () => {
    const path = join(dir, "every-type-nlc.gguf");
    writeGgufFile(path, everyType, []);
    const info = await readGgufFileInfo(path, { logWarnings: false, sourceType: "filesystem" });
    expect(info.version).toBe(3);
    const theirs = flatten(info.metadata as unknown as Record<string, unknown>);
    expect(new Map([...everyType].map(([k, v]) => [k, plain(v)]))).toEqual(theirs);
  });

  test("tensor infos: names, dimensions innermost-first, types, offsets", async () => {
    const path = join(dir, "tensors-nlc.gguf");
    const tensors = dtypes.map((dtype, i): [string, Tensor] => [
      `blk.${i}.w`,
      quantize(randomValues(256 * 5, i), [5, 256], dtype),
    ]);
    tensors.push(["r3", quantize(randomValues(30, 1), [2, 3, 5], "f32")]);
    writeGgufFile(
      path,
      new Map(),
      tensors.map(([name, t]) => entry(name, t)),
    );
    const ours = readGgufFile(path);
    const info = await readGgufFileInfo(path, { logWarnings: false, sourceType: "filesystem" });
    const theirs = info.tensorInfo ?? [];
    expect(theirs.map((t) => t.name)).toEqual(tensors.map(([name]) => name));
    theirs.forEach((t, i) => {
      const [, tensor] = tensors[i];
      expect(t.dimensions.map(Number)).toEqual([...tensor.shape].reverse());
      expect(t.ggmlType).toBe(ggmlTypeOf[tensor.dtype]);
      expect(Number(t.fileOffset)).toBe(ours.tensors[i].fileOffset);
    });
  });
});

/**
 * A small file whose every field offset is known (checked in the first test below):
 *   0 magic, 4 version, 8 tensor count, 16 kv count
 *   24 key "k.str" (len @24, bytes @32), type @37, value len @41, "hello" @49
 *   54 key "k.arr" (len @54, bytes @62), type @67, item type @71, count @75, 3 × uint8 @83
 *   86 tensor "t" (name len @86, "t" @94), n_dims @95, dims @99 (4) @107 (2), type @115, offset @119
 *   127 tensor "q" (name len @127, "q" @135), n_dims @136, dims @140 (32) @148 (1), type @156, offset @160
 *   168 end of infos → data at 192: "t" f32 [2, 4] 192..224, "q" q8_0 [1, 32] 224..258, padded to 288
 */
function writeKnownLayout(path: string): Buffer {
  const metadata = new Map<string, GgufValue>([
    ["k.str", { type: "string", value: "hello" }],
    ["k.arr", { type: "array", itemType: "uint8", value: [1, 2, 3] }],
  ]);
  const t = quantize(randomValues(8, 1), [2, 4], "f32");
  const q = quantize(randomValues(32, 2), [1, 32], "q8_0");
  writeGgufFile(path, metadata, [entry("t", t), entry("q", q)]);
  return readFileSync(path);
}

describe("bad input gives an InputError naming the file and the byte offset", () => {
  let n = 0;
  /** Writes the known-layout file with `edit` applied (and cut to `length`), and returns what reading it says. */
  function errorFor(edit: (b: Buffer) => void, length?: number): string {
    const path = join(dir, `bad-${n++}.gguf`);
    const bytes = writeKnownLayout(path);
    edit(bytes);
    writeFileSync(path, bytes.subarray(0, length ?? bytes.length));
    const message = inputErrorOf(() => readGgufFile(path));
    expect(message.startsWith(`${path}: `)).toBe(true);
    return message;
  }
  const none = () => {};

  test("the known layout is as documented", () => {
    const path = join(dir, "layout.gguf");
    const b = writeKnownLayout(path);
    expect(b.length).toBe(288);
    expect(b.toString("latin1", 32, 37)).toBe("k.str");
    expect(b.toString("latin1", 49, 54)).toBe("hello");
    expect(b.toString("latin1", 62, 67)).toBe("k.arr");
    expect([b[83], b[84], b[85]]).toEqual([1, 2, 3]);
    expect(b.toString("latin1", 94, 95)).toBe("t");
    expect(b.readUInt32LE(115)).toBe(0);
    expect(b.toString("latin1", 135, 136)).toBe("q");
    expect(b.readUInt32LE(156)).toBe(8);
    expect(b.readBigUInt64LE(160)).toBe(32n);
    const file = readGgufFile(path);
    expect(file.dataOffset).toBe(192);
    expect(file.tensors.map((t) => t.fileOffset)).toEqual([192, 224]);
  });

  test("header: magic, version", () => {
    expect(errorFor((b) => b.write("GGUX", 0, "latin1"))).toMatch(
      /offset 0 \(header\): not a GGUF file: magic is 0x58554747/,
    );
    expect(errorFor((b) => b.writeUInt32LE(1, 4))).toMatch(
      /offset 4 \(header\): unsupported GGUF version 1 \(GGUF v1 is obsolete\)/,
    );
    expect(errorFor((b) => b.writeUInt32LE(4, 4))).toMatch(/offset 4 \(header\): unsupported GGUF version 4/);
    expect(errorFor((b) => b.writeUInt32BE(3, 4))).toMatch(/version 50331648 \(a big-endian GGUF\?\)/);
  });

  test("truncated header, metadata, tensor infos, tensor data", () => {
    expect(errorFor(none, 2)).toMatch(
      /offset 0 \(header\): truncated file: needs 4 bytes but the file ends at byte 2/,
    );
    expect(errorFor(none, 12)).toMatch(
      /offset 8 \(header\): truncated file: needs 8 bytes but the file ends at byte 12/,
    );
    expect(errorFor(none, 69)).toMatch(
      /offset 67 \(metadata key "k\.arr"\): truncated file: needs 4 bytes but the file ends at byte 69/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(300n, 41))).toMatch(
      /offset 41 \(metadata key "k\.str"\): string length 300 needs more bytes than the file has left/,
    );
    expect(errorFor(none, 84)).toMatch(
      /offset 75 \(metadata key "k\.arr"\): array length 3 needs more bytes than the file has left/,
    );
    expect(errorFor(none, 150)).toMatch(/offset 148 \(tensor info of "q"\): truncated file/);
    expect(errorFor(none, 250)).toMatch(
      /offset 160 \(tensor info of "q"\): q8_0 data of shape \[1,32\] \(bytes 224\.\.258\) runs past the end of the file \(250 bytes\)/,
    );
  });

  test("absurd counts and lengths are refused before anything is allocated", () => {
    expect(errorFor((b) => b.writeBigUInt64LE(2n ** 40n, 8))).toMatch(
      /offset 8 \(header\): tensor count 1099511627776 needs more bytes than the file has left/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(2n ** 63n, 16))).toMatch(
      /offset 16 \(header\): metadata key\/value count/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(2n ** 62n, 41))).toMatch(
      /offset 41 \(metadata key "k\.str"\): string length about 4\.61e\+18/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(2n ** 40n, 24))).toMatch(
      /offset 24 \(metadata pair 0\): string length/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(1000n, 75))).toMatch(
      /offset 75 \(metadata key "k\.arr"\): array length 1000 needs more bytes than the file has left/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(2n ** 50n, 86))).toMatch(
      /offset 86 \(tensor info 0\): tensor name length .* needs more bytes than the file has left/,
    );
  });

  test("a tensor whose type and shape need more bytes than it has: its data overlaps the next or runs past the end", () => {
    // "t" f32 [2, 4] → [2, 8]: 64 bytes from 192 run into "q" at 224.
    expect(errorFor((b) => b.writeBigUInt64LE(8n, 99))).toBe(
      `${join(dir, `bad-${n - 1}.gguf`)}: offset 119 (tensor info of "t"): f32 data of shape [2,8] (bytes 192..256) overlaps the data of tensor "q" (from byte 224)`,
    );
    // "q" q8_0 → f32 (type id 0): 128 bytes from 224 run past the 288-byte file.
    expect(errorFor((b) => b.writeUInt32LE(0, 156))).toMatch(
      /offset 160 \(tensor info of "q"\): f32 data of shape \[1,32\] \(bytes 224\.\.352\) runs past the end of the file \(288 bytes\)$/,
    );
    // "q" q8_0 → q4_k (type id 12): 256-value blocks do not tile its 32-value row.
    expect(errorFor((b) => b.writeUInt32LE(12, 156))).toMatch(
      /offset 156 \(tensor info of "q"\): row length 32 is not a multiple of the q4_k block size/,
    );
    // Both at 224: "t" (32 bytes) overlaps "q".
    expect(errorFor((b) => b.writeBigUInt64LE(32n, 119))).toMatch(
      /offset 119 \(tensor info of "t"\): f32 data of shape \[2,4\] \(bytes 224\.\.256\) overlaps the data of tensor "q"/,
    );
  });

  test("unknown value types, bad bools, duplicate keys", () => {
    expect(errorFor((b) => b.writeUInt32LE(13, 37))).toMatch(
      /offset 37 \(metadata key "k\.str"\): unknown metadata value type 13/,
    );
    expect(errorFor((b) => b.writeUInt32LE(99, 71))).toMatch(
      /offset 71 \(metadata key "k\.arr"\): unknown metadata value type 99/,
    );
    expect(errorFor((b) => b.writeUInt32LE(7, 71))).toMatch(
      /offset 84 \(metadata key "k\.arr"\): invalid bool value 2/,
    );
    expect(errorFor((b) => b.write("k.str", 62, "latin1"))).toMatch(
      /offset 54 \(metadata key "k\.str"\): duplicate key/,
    );
  });

  test("tensor infos: types, dimensions, names, offsets", () => {
    expect(errorFor((b) => b.writeUInt32LE(16, 156))).toMatch(
      /offset 156 \(tensor info of "q"\): unsupported tensor type IQ2_XXS/,
    );
    expect(errorFor((b) => b.writeUInt32LE(99, 156))).toMatch(
      /offset 156 \(tensor info of "q"\): unknown tensor type id 99/,
    );
    expect(errorFor((b) => b.writeUInt32LE(5, 95))).toMatch(
      /offset 95 \(tensor info of "t"\): tensor has 5 dimensions/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(0n, 99))).toMatch(
      /offset 99 \(tensor info of "t"\): invalid dimension 0/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(2n ** 60n, 148))).toMatch(
      /offset 148 \(tensor info of "q"\): invalid dimension/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(16n, 140))).toMatch(
      /offset 156 \(tensor info of "q"\): row length 16 is not a multiple/,
    );
    expect(errorFor((b) => b.write("t", 135, "latin1"))).toMatch(
      /offset 127 \(tensor info of "t"\): duplicate tensor name/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(40n, 160))).toMatch(
      /offset 160 \(tensor info of "q"\): data offset 40 is not a multiple of the alignment 32/,
    );
    expect(errorFor((b) => b.writeBigUInt64LE(2n ** 63n, 160))).toMatch(
      /offset 160 .*data offset 9223372036854775808 is past the end/,
    );
  });

  test("general.alignment must be a uint32 power of two", () => {
    const path = join(dir, "alignment.gguf");
    writeGgufFile(path, new Map([["general.alignment", { type: "uint32", value: 64 }]]), []);
    const good = readFileSync(path);
    // key "general.alignment" (17 bytes) at 24..49, type @49, value @53
    expect(good.readUInt32LE(53)).toBe(64);
    const bad = Buffer.from(good);
    bad.writeUInt32LE(48, 53);
    writeFileSync(path, bad);
    expect(inputErrorOf(() => readGgufFile(path))).toMatch(
      /offset 53 \(metadata key "general\.alignment"\): alignment 48 is not a power of two/,
    );
    bad.writeUInt32LE(64, 53);
    bad.writeUInt32LE(5, 49); // int32
    writeFileSync(path, bad);
    expect(inputErrorOf(() => readGgufFile(path))).toMatch(
      /metadata key "general\.alignment"\): must be a uint32, not int32/,
    );
  });

  test("arrays nested too deep", () => {
    let value: GgufValue = { type: "array", itemType: "uint8", value: [1] };
    for (let i = 0; i < 9; i++) value = { type: "array", itemType: "array", value: [value] };
    const path = join(dir, "deep.gguf");
    writeGgufFile(path, new Map([["deep", value]]), []);
    expect(inputErrorOf(() => readGgufFile(path))).toMatch(
      /\(metadata key "deep"\): arrays nested more than 8 deep/,
    );
  });

  test("missing file; file cut after its header was read", () => {
    expect(inputErrorOf(() => readGgufFile(join(dir, "nope.gguf")))).toMatch(/nope\.gguf: cannot open/);
    const path = join(dir, "shrinks.gguf");
    writeKnownLayout(path);
    const file = readGgufFile(path);
    truncateSync(path, 230);
    expect(inputErrorOf(() => readGgufTensor(file, file.tensors[1]))).toMatch(
      /file ended at byte 230 inside tensor "q"/,
    );
  });
});

describe("big files", () => {
  test("tensor data past 4 GiB (sparse file)", () => {
    const path = join(dir, "sparse.gguf");
    const a = quantize(randomValues(8, 3), [8], "f32");
    const b = quantize(randomValues(64, 4), [2, 32], "q8_0");
    writeGgufFile(path, new Map(), [entry("a", a), entry("b", b)]);
    const file = readGgufFile(path);
    const far = 5 * 2 ** 30 + 64; // a multiple of 32
    // Move b's data far away: patch its offset field (the last 8 bytes of the tensor infos) and write it there.
    const bytes = readFileSync(path);
    const offsetField = bytes.indexOf(Buffer.from("b")) + 1 + 4 + 2 * 8 + 4;
    expect(bytes.readBigUInt64LE(offsetField)).toBe(BigInt(file.tensors[1].fileOffset - file.dataOffset));
    const fd = openSync(path, "r+");
    try {
      const field = Buffer.alloc(8);
      field.writeBigUInt64LE(BigInt(far));
      writeSync(fd, field, 0, 8, offsetField);
      writeSync(fd, b.data, 0, b.data.length, file.dataOffset + far);
    } finally {
      closeSync(fd);
    }
    const big = readGgufFile(path);
    expect(big.tensors[1].fileOffset).toBe(file.dataOffset + far);
    expect(Buffer.from(readGgufTensor(big, big.tensors[1]).data).equals(Buffer.from(b.data))).toBe(true);
    expect(Buffer.from(readGgufTensor(big, big.tensors[0]).data).equals(Buffer.from(a.data))).toBe(true);
  });

  const canResetPeak = process.platform === "linux" && existsSync("/proc/self/clear_refs");
  /** A full garbage collection, without starting node with --expose-gc. */
  const collectGarbage = () => {
    v8.setFlagsFromString("--expose-gc");
    (vm.runInNewContext("gc") as () => void)();
  };
  test.skipIf(!canResetPeak)(
    "reading every tensor of a 128 MiB file raises peak RSS by less than 1.5 × its size",
    () => {
      const path = join(dir, "big.gguf");
      const tensorCount = 64;
      const shape = [512, 1024]; // 2 MiB of f32
      // One shared data buffer, so that writing leaves no garbage whose collection would blur the measurement.
      const data = Uint8Array.from({ length: 2 * 2 ** 20 }, (_, i) => i % 251);
      const tensors = Array.from({ length: tensorCount }, (_, i) => ({
        name: `t${i}`,
        dtype: "f32" as DType,
        shape,
        data: () => data,
      }));
      writeGgufFile(path, new Map(), tensors);
      const size = statSync(path).size;
      const status = () => readFileSync("/proc/self/status", "utf8");
      const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status())?.[1]) * 1024;
      collectGarbage(); // garbage of earlier tests freed while we measure would hide part of the increase
      writeFileSync("/proc/self/clear_refs", "5"); // reset the peak (VmHWM) to the current RSS
      const before = kib("VmRSS");
      const file = readGgufFile(path);
      const loaded = file.tensors.map((info) => readGgufTensor(file, info));
      const peakIncrease = kib("VmHWM") - before;
      expect(Buffer.from(loaded[63].data).equals(data)).toBe(true);
      // The measurement sees the tensors (loosely: V8 returning freed heap pages meanwhile blurs it).
      expect(peakIncrease).toBeGreaterThan(0.5 * size);
      expect(peakIncrease).toBeLessThan(1.5 * size);
    },
  );
});

// ---- whole models ----

/** SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then a few pieces. */
function spmVocab(): VocabSpec {
  return sentencePieceVocab(["▁", "▁a", "b", "▁ab", "ab"].map((piece, i) => [piece, -i]));
}

/** Byte-level BPE vocabulary: the 256 byte characters, two merges, and chat special tokens. */
function bpeVocab(): VocabSpec {
  const tokens = [...byteToChar, "Ġa", "Ġab", "<|endoftext|>", "<|im_start|>", "<|im_end|>"];
  const types = tokens.map((t) => (t.startsWith("<|") ? TokenType.control : TokenType.normal));
  return {
    model: "gpt2",
    tokens,
    tokenTypes: types,
    merges: ["Ġ a", "Ġa b"],
    pre: "qwen2",
    bosId: 258,
    eosId: 260,
    padId: 258,
    eotIds: [260],
    addBos: false,
    addEos: false,
  };
}

function tinyModel(config: Omit<ModelConfig, "vocabSize">, vocab: VocabSpec, seed = 1): LoadedModel {
  const full: ModelConfig = { ...config, vocabSize: vocab.tokens.length };
  const tensors = new Map<string, Tensor>();
  let i = seed;
  for (const [name, shape] of expectedTensors(full)) {
    const n = shape.reduce((a, b) => a * b, 1);
    tensors.set(name, quantize(randomValues(n, i++), shape, "f32"));
  }
  return {
    config: full,
    tensors,
    tokenizer: createTokenizer(vocab),
    vocab,
    chatTemplate: "{% for m in messages %}{{ m.content }}{% endfor %}",
    name: "tiny",
    format: "gguf",
    path: "test:tiny",
  };
}

const llamaConfig = plainConfig({
  vocabSize: 0,
  dim: 64,
  hiddenDim: 80, // not whole q8_0 blocks: ffn_down falls back to f16
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 16,
  maxSeqLen: 256,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeStyle: "interleaved",
  tiedEmbeddings: false,
  attentionBias: false,
});

const qwenConfig: Omit<ModelConfig, "vocabSize"> = {
  ...llamaConfig,
  architecture: "qwen2",
  hiddenDim: 96,
  normEps: 1e-6,
  ropeTheta: 1000000,
  ropeStyle: "neox",
  tiedEmbeddings: true,
  attentionBias: true,
};

describe("models: writeGgufModel → loadGgufModel", () => {
  test("llama f32: config, tensors, vocabulary, template and name come back unchanged", () => {
    const model = tinyModel(llamaConfig, spmVocab());
    const path = join(dir, "tiny-llama-f32.gguf");
    writeGgufModel(model, path, { dtype: "f32" });
    const loaded = loadGgufModel(path);
    expect(loaded.config).toEqual(model.config);
    expect(loaded.vocab).toEqual(model.vocab);
    expect(loaded.chatTemplate).toBe(model.chatTemplate);
    expect(loaded.name).toBe("tiny");
    expect(loaded.format).toBe("gguf");
    expect([...loaded.tensors.keys()].sort()).toEqual([...model.tensors.keys()].sort());
    for (const [name, t] of model.tensors)
      expect(summary(loaded.tensors.get(name)), name).toEqual(summary(t));
    expect(loaded.tokenizer.encode("a ab b")).toEqual(model.tokenizer.encode("a ab b"));
  });

  test("q8_0: 2-D weights quantized, rows that are not whole blocks in f16, 1-D in f32; general.file_type 7", () => {
    const model = tinyModel(llamaConfig, spmVocab());
    const path = join(dir, "tiny-llama-q8_0.gguf");
    writeGgufModel(model, path, { dtype: "q8_0" });
    expect(readGgufFile(path).metadata.get("general.file_type")).toEqual({ type: "uint32", value: 7 });
    const loaded = loadGgufModel(path);
    for (const [name, t] of model.tensors) {
      const expected: DType =
        t.shape.length === 1 ? "f32" : name.endsWith("ffn_down.weight") ? "f16" : "q8_0";
      const got = loaded.tensors.get(name) as Tensor;
      expect(got.dtype, name).toBe(expected);
      expect(summary(got), name).toEqual(summary(quantize(dequantize(t), t.shape, expected)));
    }
  });

  test("qwen2 bf16: neox, biases, tied embeddings, byte-level BPE with merges and an eot token", () => {
    const model = tinyModel(qwenConfig, bpeVocab());
    const path = join(dir, "tiny-qwen2.gguf");
    writeGgufModel(model, path, { dtype: "bf16" });
    const loaded = loadGgufModel(path);
    expect(loaded.config).toEqual(model.config);
    expect(loaded.vocab).toEqual(model.vocab);
    expect(loaded.tensors.has(tensorNames.output)).toBe(false);
    const wq = model.tensors.get(tensorNames.wq(1)) as Tensor;
    // qwen2 GGUF is neox like the model: no reordering
    expect(summary(loaded.tensors.get(tensorNames.wq(1)))).toEqual(
      summary(quantize(dequantize(wq), wq.shape, "bf16")),
    );
    expect(summary(loaded.tensors.get(tensorNames.bq(1)))).toEqual(
      summary(model.tensors.get(tensorNames.bq(1))),
    );
    expect(loaded.tokenizer.encode("<|im_start|> ab")).toEqual(model.tokenizer.encode("<|im_start|> ab"));
  });

  test("every dtype and mix writes and loads, each tensor in the type mixes.ts chose for it", () => {
    const wq = new Map<WeightType, DType | undefined>();
    for (const weightType of weightTypes) {
      const path = join(dir, `tiny-${weightType}.gguf`);
      writeGgufModel(tinyModel(llamaConfig, spmVocab()), path, { dtype: weightType });
      const loaded = loadGgufModel(path);
      for (const [name, t] of loaded.tensors) {
        expect(t.dtype, name).toBe(tensorType(weightType, name, t.shape, llamaConfig));
      }
      expect(readGgufFile(path).metadata.get("general.file_type")?.value).toBe(fileTypeOf(weightType));
      wq.set(weightType, loaded.tensors.get(tensorNames.wq(0))?.dtype);
    }
    // The rows are 64 wide: whole 32-value blocks, but not whole 256-value ones, so the K-quants fall back.
    expect(llamaConfig.dim).toBe(64);
    expect([wq.get("q8_0"), wq.get("q4_k"), wq.get("q5_k"), wq.get("q6_k"), wq.get("q4_k_m")]).toEqual([
      "q8_0",
      "q5_0",
      "q5_1",
      "q8_0",
      "q5_0",
    ]);
  });

  test("extraMetadata adds keys and overrides written ones", () => {
    const path = join(dir, "tiny-extra.gguf");
    const extra = new Map<string, GgufValue>([
      ["general.synthetic", { type: "bool", value: true }],
      ["general.name", { type: "string", value: "renamed" }],
    ]);
    writeGgufModel(tinyModel(llamaConfig, spmVocab()), path, { dtype: "f16", extraMetadata: extra });
    expect(readGgufFile(path).metadata.get("general.synthetic")).toEqual({ type: "bool", value: true });
    expect(loadGgufModel(path).name).toBe("renamed");
  });

  test("the keys llama.cpp needs are written", async () => {
    const path = join(dir, "tiny-keys.gguf");
    writeGgufModel(tinyModel(llamaConfig, spmVocab()), path, { dtype: "q4_0" });
    const m = flatten(
      (await readGgufFileInfo(path, { logWarnings: false })).metadata as unknown as Record<string, unknown>,
    );
    expect(m.get("general.architecture")).toBe("llama");
    expect(m.get("general.file_type")).toBe(2);
    expect(m.get("general.alignment")).toBe(32);
    expect(m.get("llama.vocab_size")).toBe(264);
    expect(m.get("llama.context_length")).toBe(256);
    expect(m.get("llama.embedding_length")).toBe(64);
    expect(m.get("llama.feed_forward_length")).toBe(80);
    expect(m.get("llama.block_count")).toBe(2);
    expect(m.get("llama.attention.head_count")).toBe(4);
    expect(m.get("llama.attention.head_count_kv")).toBe(2);
    expect(m.get("llama.rope.dimension_count")).toBe(16);
    expect(m.get("llama.rope.freq_base")).toBe(10000);
    expect(m.get("llama.attention.layer_norm_rms_epsilon")).toBe(Math.fround(1e-5));
    expect(m.get("tokenizer.ggml.model")).toBe("llama");
    expect((m.get("tokenizer.ggml.tokens") as string[]).length).toBe(264);
    expect(m.get("tokenizer.ggml.bos_token_id")).toBe(1);
    expect(m.get("tokenizer.chat_template")).toContain("messages");
  });
});

/** RoPE from the definitions in config.ts: rotate pairs (a, b) by p · base^(-2i / headDim). */
function rope(v: number[], p: number, base: number, style: "neox" | "interleaved"): number[] {
  const out = [...v];
  const half = v.length / 2;
  for (let i = 0; i < half; i++) {
    const angle = p * base ** ((-2 * i) / v.length);
    const [a, b] = style === "neox" ? [i, i + half] : [2 * i, 2 * i + 1];
    out[a] = v[a] * Math.cos(angle) - v[b] * Math.sin(angle);
    out[b] = v[a] * Math.sin(angle) + v[b] * Math.cos(angle);
  }
  return out;
}

/** Rows `head * headDim .. (head + 1) * headDim` of W·x + bias. */
function project(model: LoadedModel, w: string, bias: string, head: number, x: Float32Array): number[] {
  const t = model.tensors.get(w) as Tensor;
  const weights = dequantize(t);
  const b = dequantize(model.tensors.get(bias) as Tensor);
  const { headDim, dim } = model.config;
  return Array.from({ length: headDim }, (_, r) => {
    const row = head * headDim + r;
    let s = b[row];
    for (let c = 0; c < dim; c++) s += weights[row * dim + c] * x[c];
    return s;
  });
}

describe("RoPE convention: a neox llama is written in GGUF llama's interleaved order", () => {
  test("attention scores q·k after RoPE are unchanged by the conversion", () => {
    const model = tinyModel({ ...llamaConfig, ropeStyle: "neox", attentionBias: true }, spmVocab(), 5);
    const path = join(dir, "tiny-neox-llama.gguf");
    writeGgufModel(model, path, { dtype: "f32" });
    const loaded = loadGgufModel(path);
    expect(loaded.config).toEqual({ ...model.config, ropeStyle: "interleaved" });
    const { nHeads, nKvHeads, ropeTheta } = model.config;
    const x = randomValues(64, 11);
    const y = randomValues(64, 12);
    const score = (m: LoadedModel, style: "neox" | "interleaved", l: number, head: number) => {
      const kvHead = Math.floor(head / (nHeads / nKvHeads));
      const q = rope(project(m, tensorNames.wq(l), tensorNames.bq(l), head, x), 7, ropeTheta, style);
      const k = rope(project(m, tensorNames.wk(l), tensorNames.bk(l), kvHead, y), 3, ropeTheta, style);
      return q.reduce((s, qi, i) => s + qi * k[i], 0);
    };
    for (let l = 0; l < 2; l++) {
      for (let head = 0; head < nHeads; head++) {
        const before = score(model, "neox", l, head);
        expect(score(loaded, "interleaved", l, head), `layer ${l} head ${head}`).toBeCloseTo(before, 9);
      }
    }
    // Q rows moved (the scores above would differ without it); everything else is untouched.
    expect(summary(loaded.tensors.get(tensorNames.wq(0)))).not.toEqual(
      summary(model.tensors.get(tensorNames.wq(0))),
    );
    for (const name of [
      tensorNames.wv(0),
      tensorNames.wo(1),
      tensorNames.bv(0),
      tensorNames.tokenEmbedding,
    ]) {
      expect(summary(loaded.tensors.get(name)), name).toEqual(summary(model.tensors.get(name)));
    }
  });
});

describe("models: bad input", () => {
  /** Rewrites a good model file with `edit` applied to its metadata and tensor list, and returns the load error. */
  function loadErrorFor(
    edit: (metadata: Map<string, GgufValue>, tensors: GgufTensorEntry[]) => void,
    model = tinyModel(llamaConfig, spmVocab()),
  ): string {
    const good = join(dir, "model-good.gguf");
    writeGgufModel(model, good, { dtype: "f32" });
    const file = readGgufFile(good);
    const tensors = file.tensors.map((info) => entry(info.name, readGgufTensor(file, info)));
    edit(file.metadata, tensors);
    const bad = join(dir, "model-bad.gguf");
    writeGgufFile(bad, file.metadata, tensors);
    const message = inputErrorOf(() => loadGgufModel(bad));
    expect(message.startsWith(`${bad}: `)).toBe(true);
    return message;
  }
  const str = (value: string): GgufValue => ({ type: "string", value });
  const u32 = (value: number): GgufValue => ({ type: "uint32", value });

  test("architecture and hyper-parameters", () => {
    expect(loadErrorFor((m) => m.set("general.architecture", str("gemma")))).toMatch(
      /metadata key "general\.architecture" is "gemma": only llama, qwen2, qwen3, gemma2, gemma3, phi3 are/,
    );
    expect(loadErrorFor((m) => m.delete("general.architecture"))).toMatch(
      /metadata key "general\.architecture" is missing/,
    );
    expect(loadErrorFor((m) => m.delete("llama.block_count"))).toMatch(
      /metadata key "llama\.block_count" is missing/,
    );
    expect(loadErrorFor((m) => m.set("llama.embedding_length", str("64")))).toMatch(
      /metadata key "llama\.embedding_length" is a string, expected an integer/,
    );
    expect(loadErrorFor((m) => m.set("llama.attention.head_count_kv", u32(3)))).toMatch(
      /head_count_kv" \(3\) does not divide/,
    );
    expect(loadErrorFor((m) => m.set("llama.rope.dimension_count", u32(8)))).toMatch(
      /rope\.dimension_count" is 8; only 16/,
    );
    expect(loadErrorFor((m) => m.set("llama.rope.scaling.type", str("dynamic")))).toMatch(
      /rope\.scaling\.type" is "dynamic"; llama\.cpp knows none, linear, yarn, longrope/,
    );
    expect(loadErrorFor((m) => m.set("llama.vocab_size", u32(100)))).toMatch(
      /"llama\.vocab_size" is 100 but tokenizer\.ggml\.tokens has 264/,
    );
    expect(
      loadErrorFor((m) => m.set("llama.attention.layer_norm_rms_epsilon", { type: "bool", value: true })),
    ).toMatch(/is a bool, expected a number/);
  });

  test("tokenizer keys", () => {
    expect(loadErrorFor((m) => m.set("tokenizer.ggml.model", str("bert")))).toMatch(
      /"tokenizer\.ggml\.model" is "bert"/,
    );
    expect(loadErrorFor((m) => m.set("tokenizer.ggml.tokens", str("x")))).toMatch(
      /"tokenizer\.ggml\.tokens" is a string, expected an array of strings/,
    );
    expect(
      loadErrorFor((m) =>
        m.set("tokenizer.ggml.scores", { type: "array", itemType: "float32", value: [1, 2] }),
      ),
    ).toMatch(/"tokenizer\.ggml\.scores" has 2 entries for 264 tokens/);
    expect(loadErrorFor((m) => m.set("tokenizer.ggml.eos_token_id", u32(264)))).toMatch(
      /"tokenizer\.ggml\.eos_token_id" is 264, outside/,
    );
    expect(loadErrorFor((m) => m.set("tokenizer.ggml.add_bos_token", u32(1)))).toMatch(
      /add_bos_token" is a uint32, expected a bool/,
    );
  });

  test("tensors: missing, wrong shape, unsupported extra", () => {
    const without = (name: string) => (_: Map<string, GgufValue>, t: GgufTensorEntry[]) =>
      t.splice(
        t.findIndex((e) => e.name === name),
        1,
      );
    expect(loadErrorFor(without("blk.1.ffn_up.weight"))).toMatch(
      /tensor "blk\.1\.ffn_up\.weight" is missing \(expected shape \[80,64\]\)/,
    );
    expect(
      loadErrorFor((_, t) => {
        const i = t.findIndex((e) => e.name === "blk.0.attn_k.weight");
        t[i] = entry("blk.0.attn_k.weight", quantize(new Float32Array(64 * 64), [64, 64], "f32"));
      }),
    ).toMatch(/tensor "blk\.0\.attn_k\.weight" has shape \[64,64\], expected \[32,64\]/);
    expect(
      loadErrorFor((_, t) =>
        t.push(entry("rope_factors_long.weight", quantize(new Float32Array(8), [8], "f32"))),
      ),
    ).toMatch(/tensor "rope_factors_long\.weight" is not supported/);
  });

  test("writing needs a vocabulary, and qwen2 GGUF cannot hold interleaved RoPE", () => {
    const model = tinyModel(llamaConfig, spmVocab());
    expect(
      inputErrorOf(() =>
        writeGgufModel({ ...model, vocab: undefined }, join(dir, "x.gguf"), { dtype: "f32" }),
      ),
    ).toMatch(/^test:tiny: .*cannot be written to GGUF/);
    const qwen = tinyModel({ ...qwenConfig, ropeStyle: "interleaved" }, bpeVocab());
    expect(inputErrorOf(() => writeGgufModel(qwen, join(dir, "x.gguf"), { dtype: "f32" }))).toMatch(
      /cannot be written as GGUF qwen2: .*ropeStyle would be "neox", the model has "interleaved"/,
    );
  });
});

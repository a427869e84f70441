import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  SafetensorsCheckpoint,
  SafetensorsFile,
  writeSafetensors,
} from "../../src/model/formats/safetensors.js";
import type { Tensor } from "../../src/model/tensor.js";
import { expectInputError } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-safetensors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;
const freshPath = (name = "t.safetensors") => join(dir, `${fileCounter++}-${name}`);

/** A safetensors file built by hand from the spec: u64 LE header length, JSON header, data. */
function rawFile(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): string {
  const json = Buffer.from(headerText, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const path = freshPath();
  writeFileSync(path, Buffer.concat([length, json, data]));
  return path;
}

const f32Bytes = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
const u16Bytes = (values: number[]) => new Uint8Array(Uint16Array.from(values).buffer);

describe("reading a hand-built file", () => {
  // "a": F32 [2] = 1.5, -2 at [0, 8); "b": BF16 [2, 1] = 1.0 (0x3f80), -0.5 (0xbf00) at [8, 12).
  const data = new Uint8Array([...f32Bytes([1.5, -2]), ...u16Bytes([0x3f80, 0xbf00])]);
  const header = {
    __metadata__: { format: "pt" },
    b: { dtype: "BF16", shape: [2, 1], data_offsets: [8, 12] },
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
  };

  it("parses the header and reads each tensor at its offset", () => {
    const file = SafetensorsFile.open(rawFile(header, data));
    try {
      expect(file.metadata).toEqual({ format: "pt" });
      expect([...file.entries.keys()].sort()).toEqual(["a", "b"]);
      const a = file.read("a");
      expect(a.dtype).toBe("f32");
      expect(a.shape).toEqual([2]);
      expect(Array.from(new Float32Array(a.data.buffer, a.data.byteOffset, 2))).toEqual([1.5, -2]);
      const b = file.read("b");
      expect(b).toEqual({ dtype: "bf16", shape: [2, 1], data: u16Bytes([0x3f80, 0xbf00]) });
    } finally {
      file.close();
    }
  });

  it("accepts a space-padded header and a file without __metadata__", () => {
    const { __metadata__, ...tensorsOnly } = header;
    const file = SafetensorsFile.open(rawFile(null, data, `${JSON.stringify(tensorsOnly)}      `));
    expect(file.metadata).toEqual({});
    expect(file.read("b").data).toEqual(u16Bytes([0x3f80, 0xbf00]));
    file.close();
  });

  it("lists a tensor of another dtype but refuses to read it, naming file and tensor", () => {
    const path = rawFile({ ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8));
    const file = SafetensorsFile.open(path);
    expect(file.entries.get("ids")?.dtype).toBe("I64");
    expectInputError(() => file.read("ids"), path, '"ids"', "I64");
    expectInputError(() => file.read("nope"), path, '"nope"');
    file.close();
  });
});

describe("write → read round trip", () => {
  const tensors = new Map<string, Tensor>([
    ["w.f32", { dtype: "f32", shape: [3, 2], data: f32Bytes([0, 1, -1, 0.25, 1e30, -7]) }],
    ["w.f16", { dtype: "f16", shape: [2], data: u16Bytes([0x3c00, 0xc000]) }],
    ["w.bf16", { dtype: "bf16", shape: [1, 1, 3], data: u16Bytes([0x3f80, 0x0001, 0x7f80]) }],
    ["scalar", { dtype: "f32", shape: [], data: f32Bytes([42]) }],
    ["empty", { dtype: "f32", shape: [0, 4], data: new Uint8Array(0) }],
  ]);

  it("gives back the same tensors and metadata", () => {
    const path = freshPath();
    writeSafetensors(path, tensors, { format: "pt", note: "hello" });
    const file = SafetensorsFile.open(path);
    expect(file.metadata).toEqual({ format: "pt", note: "hello" });
    for (const [name, t] of tensors) expect(file.read(name), name).toEqual(t);
    file.close();
  });

  it("writes the layout of the spec, with the data 8-byte aligned", () => {
    const path = freshPath();
    writeSafetensors(path, tensors);
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect((8 + headerLength) % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"));
    expect(header["w.f16"]).toEqual({ dtype: "F16", shape: [2], data_offsets: [24, 28] });
    const [begin, end] = header["w.f32"].data_offsets;
    expect(new Uint8Array(bytes.subarray(8 + headerLength + begin, 8 + headerLength + end))).toEqual(
      tensors.get("w.f32")?.data,
    );
    expect(bytes.length).toBe(8 + headerLength + 24 + 4 + 6 + 4);
  });

  it("refuses quantized tensors", () => {
    const path = freshPath();
    const q: Tensor = { dtype: "q8_0", shape: [32], data: new Uint8Array(34) };
    expectInputError(() => writeSafetensors(path, new Map([["q", q]])), path, '"q"', "q8_0");
  });
});

describe("sharded checkpoints", () => {
  it("reads tensors through model.safetensors.index.json", () => {
    const shardDir = mkdtempSync(join(dir, "sharded-"));
    const t = (v: number): Tensor => ({ dtype: "f32", shape: [1], data: f32Bytes([v]) });
    writeSafetensors(
      join(shardDir, "model-00001-of-00002.safetensors"),
      new Map([
        ["x", t(1)],
        ["y", t(2)],
      ]),
    );
    writeSafetensors(join(shardDir, "model-00002-of-00002.safetensors"), new Map([["z", t(3)]]));
    const weightMap = { x: "model-00001-of-00002.safetensors", y: "model-00001-of-00002.safetensors" };
    writeFileSync(
      join(shardDir, "model.safetensors.index.json"),
      JSON.stringify({
        metadata: { total_size: 12 },
        weight_map: { ...weightMap, z: "model-00002-of-00002.safetensors" },
      }),
    );
    const checkpoint = SafetensorsCheckpoint.open(shardDir);
    expect(checkpoint.source).toBe(join(shardDir, "model.safetensors.index.json"));
    expect([...checkpoint.names()].sort()).toEqual(["x", "y", "z"]);
    expect(checkpoint.read("z")).toEqual(t(3));
    expect(checkpoint.read("x")).toEqual(t(1));
    expect(checkpoint.find("y")?.file.path).toBe(join(shardDir, "model-00001-of-00002.safetensors"));
    expect(checkpoint.find("w")).toBeUndefined();
    checkpoint.close();
  });

  it("reads a single model.safetensors", () => {
    const singleDir = mkdtempSync(join(dir, "single-"));
    const t: Tensor = { dtype: "f16", shape: [1], data: u16Bytes([0x3c00]) };
    writeSafetensors(join(singleDir, "model.safetensors"), new Map([["only", t]]));
    const checkpoint = SafetensorsCheckpoint.open(singleDir);
    expect(checkpoint.read("only")).toEqual(t);
    expectInputError(() => checkpoint.read("other"), join(singleDir, "model.safetensors"), '"other"');
    checkpoint.close();
  });

  it("rejects bad indexes, naming the file", () => {
    const bad = (index: string, shards: Record<string, Map<string, Tensor>> = {}) => {
      const d = mkdtempSync(join(dir, "bad-index-"));
      for (const [name, tensors] of Object.entries(shards)) writeSafetensors(join(d, name), tensors);
      writeFileSync(join(d, "model.safetensors.index.json"), index);
      return d;
    };
    const index = (d: string) => join(d, "model.safetensors.index.json");
    const one = new Map<string, Tensor>([["a", { dtype: "f32", shape: [1], data: f32Bytes([1]) }]]);

    let d = bad("{not json");
    expectInputError(() => SafetensorsCheckpoint.open(d), index(d), "JSON");
    d = bad(JSON.stringify({ metadata: {} }));
    expectInputError(() => SafetensorsCheckpoint.open(d), index(d), "weight_map");
    d = bad(JSON.stringify({ weight_map: { a: "missing.safetensors" } }));
    expectInputError(() => SafetensorsCheckpoint.open(d), index(d), "missing.safetensors", '"a"');
    d = bad(JSON.stringify({ weight_map: { a: "../escape.safetensors" } }));
    expectInputError(() => SafetensorsCheckpoint.open(d), index(d), '"a"');
    d = bad(JSON.stringify({ weight_map: { b: "s.safetensors" } }), { "s.safetensors": one });
    expectInputError(() => SafetensorsCheckpoint.open(d), join(d, "s.safetensors"), '"b"');

    const empty = mkdtempSync(join(dir, "empty-"));
    expectInputError(() => SafetensorsCheckpoint.open(empty), empty, "model.safetensors");
  });
});

describe("malformed files give an InputError naming the file", () => {
  const okEntry = { dtype: "F32", shape: [2], data_offsets: [0, 8] };

  it("too short, or a header length past the end", () => {
    const short = freshPath();
    writeFileSync(short, new Uint8Array(5));
    expectInputError(() => SafetensorsFile.open(short), short, "too short");
    const path = rawFile({ a: okEntry }, new Uint8Array(8));
    const bytes = readFileSync(path);
    bytes.writeBigUInt64LE(1n << 40n, 0);
    writeFileSync(path, bytes);
    expectInputError(() => SafetensorsFile.open(path), path, "header length");
  });

  it("a header that is not a JSON object", () => {
    let path = rawFile(null, new Uint8Array(0), "{ not json");
    expectInputError(() => SafetensorsFile.open(path), path, "JSON");
    path = rawFile([1, 2], new Uint8Array(0));
    expectInputError(() => SafetensorsFile.open(path), path, "object");
    path = rawFile({ __metadata__: { n: 1 } }, new Uint8Array(0));
    expectInputError(() => SafetensorsFile.open(path), path, "__metadata__");
  });

  it("bad tensor entries name the tensor", () => {
    const cases: [unknown, string][] = [
      [{ ...okEntry, dtype: "F33" }, "dtype"],
      [{ ...okEntry, dtype: "toString" }, "dtype"],
      [{ ...okEntry, shape: [2.5] }, "shape"],
      [{ ...okEntry, shape: "2" }, "shape"],
      [{ ...okEntry, data_offsets: [8, 0] }, "data_offsets"],
      [{ ...okEntry, data_offsets: [0] }, "data_offsets"],
      [{ ...okEntry, data_offsets: [0, 12] }, "needs 8"],
      [{ dtype: "F32", shape: [2] }, "data_offsets"],
      [7, "not an object"],
    ];
    for (const [entry, problem] of cases) {
      const path = rawFile({ weight: entry }, new Uint8Array(16));
      expectInputError(() => SafetensorsFile.open(path), path, '"weight"', problem);
    }
  });

  it("truncated data", () => {
    const path = rawFile({ big: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, new Uint8Array(10));
    expectInputError(() => SafetensorsFile.open(path), path, '"big"', "truncated");
  });

  it("overlapping tensors", () => {
    const header = { a: okEntry, b: { dtype: "F16", shape: [2], data_offsets: [6, 10] } };
    const path = rawFile(header, new Uint8Array(10));
    expectInputError(() => SafetensorsFile.open(path), path, '"a"', '"b"', "overlap");
  });

  it("a missing file", () => {
    const path = join(dir, "absent.safetensors");
    expectInputError(() => SafetensorsFile.open(path), path, "not found");
  });
});

/**
 * Fuzzing the GGUF loader: real small files (the bundled model, synthetic models written by gguf-writer.ts)
 * with their bytes, lengths, counts, types and metadata mutated, then loaded with loadModel. Whatever the file
 * holds, loading either succeeds or throws an InputError whose message names the file, is one short line and
 * carries no control characters. fast-check prints the seed and the shrunk counterexample of a failure.
 * FUZZ_SCALE=10 runs ten times as many cases (minutes, for a deeper search outside CI).
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { expectedTensors, type ModelConfig, plainConfig } from "../../src/model/config.js";
import { dtypeLayout, dtypes, quantize, tensorBytes } from "../../src/model/dtype.js";
import { InputError } from "../../src/model/errors.js";
import { storedDTypes, writeGgufModel } from "../../src/model/formats/gguf-model.js";
import {
  type GgufValue,
  type GgufValueType,
  ggufValueTypes,
  readGgufFile,
  readGgufTensor,
} from "../../src/model/formats/gguf-reader.js";
import { type GgufTensorEntry, writeGgufFile } from "../../src/model/formats/gguf-writer.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import type { Tensor } from "../../src/model/tensor.js";
import { byteToChar } from "../../src/model/tokenizer/byte-unicode.js";
import { createTokenizer } from "../../src/model/tokenizer/create.js";
import { TokenType, type VocabSpec } from "../../src/model/tokenizer/tokenizer.js";
import { unsafeForTerminal } from "../helpers.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vellum-gguf-fuzz-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Outcome = "loaded" | "refused";

/**
 * Loads `path` and checks the one allowed failure: an InputError naming the file, one short line of visible
 * characters. A loaded model has its tensors read and its tokenizer run, so a lazily read or built part cannot
 * hide a crash.
 */
function loadChecked(path: string): Outcome {
  try {
    return loadAndUse(path);
  } finally {
    rmSync(path, { force: true });
  }
}

function loadAndUse(path: string): Outcome {
  let model: LoadedModel;
  try {
    model = loadModel(path);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    expect(e.message.startsWith(`${path}: `), e.message).toBe(true);
    // One line, though a long one may list the values a key takes (41 supported pre-tokenizers: ~480 characters).
    expect(e.message.length, e.message).toBeLessThan(path.length + 600);
    expect(e.message, e.message).not.toMatch(unsafeForTerminal);
    return "refused";
  }
  for (const t of model.tensors.values()) expect(t.data.byteLength).toBeGreaterThan(0);
  const ids = model.tokenizer.encode("In the beginning God created the heaven and the earth.");
  model.tokenizer.decode(ids);
  return "loaded";
}

// ---- the files mutated ----

/** A 4- or 8-byte field of the header: a count, a length, a type id, a dimension, an offset. */
interface Field {
  at: number;
  bytes: 4 | 8;
  what: string;
}

interface Base {
  name: string;
  bytes: Buffer;
  /** The header's fields by what they are (string lengths of a 2,048-token vocabulary would drown the rest). */
  fields: Map<string, Field[]>;
  /** Where the header (metadata and tensor infos) ends. */
  headerEnd: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorEntry[];
}

/** Bytes of each scalar value type, by type id (string = 8, array = 9 are walked). */
const scalarBytes = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];

/** Walks a valid GGUF header and lists its fields; written independently of the reader. */
function headerFields(b: Buffer): { fields: Map<string, Field[]>; end: number } {
  const fields = new Map<string, Field[]>();
  let p = 4;
  const field = (what: string, bytes: 4 | 8) => {
    const list = fields.get(what) ?? [];
    list.push({ at: p, bytes, what });
    fields.set(what, list);
    const v = bytes === 4 ? b.readUInt32LE(p) : Number(b.readBigUInt64LE(p));
    p += bytes;
    return v;
  };
  const skip = (n: number) => {
    p += n;
  };
  const value = (type: number, what: string) => {
    if (type === 8) skip(field(`${what} string length`, 8));
    else if (type === 9) {
      const itemType = field("array item type", 4);
      const n = field("array length", 8);
      for (let i = 0; i < n; i++) value(itemType, "array item");
    } else if (scalarBytes[type] === 4 || scalarBytes[type] === 8) {
      field(`${what} ${ggufValueTypes[type]}`, scalarBytes[type] as 4 | 8);
    } else skip(scalarBytes[type]);
  };
  field("version", 4);
  const tensorCount = field("tensor count", 8);
  const kvCount = field("metadata count", 8);
  for (let i = 0; i < kvCount; i++) {
    skip(field("key length", 8));
    value(field("value type", 4), "value");
  }
  for (let i = 0; i < tensorCount; i++) {
    skip(field("tensor name length", 8));
    const nDims = field("tensor dimension count", 4);
    for (let d = 0; d < nDims; d++) field("tensor dimension", 8);
    field("tensor type", 4);
    field("tensor data offset", 8);
  }
  return { fields, end: p };
}

function baseOf(name: string, path: string): Base {
  const bytes = readFileSync(path);
  const file = readGgufFile(path);
  const tensors = file.tensors.map((info) => {
    const data = readGgufTensor(file, info).data;
    return { name: info.name, dtype: info.dtype, shape: info.shape, data: () => data };
  });
  const { fields, end } = headerFields(bytes);
  return { name, bytes, fields, headerEnd: end, metadata: file.metadata, tensors };
}

/** Deterministic small weights for a model of `config`, in q8_0 where rows are whole blocks. */
function modelOf(config: ModelConfig, vocab: VocabSpec, chatTemplate: string): LoadedModel {
  const tensors = new Map<string, Tensor>();
  const types = storedDTypes(config, "q8_0");
  let s = 7;
  for (const [name, shape] of expectedTensors(config)) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return (s / 2 ** 32 - 0.5) * 0.1;
    });
    tensors.set(name, quantize(values, shape, types.get(name) ?? "f32"));
  }
  return {
    config,
    tensors,
    tokenizer: createTokenizer(vocab),
    vocab,
    chatTemplate,
    name: "fuzz",
    format: "gguf",
    path: "test:fuzz",
  };
}

/** A byte-level BPE (gpt2) vocabulary: the 256 byte characters, a few merges, ChatML specials. */
function byteLevelVocab(): VocabSpec {
  const pieces = ["Ġt", "he", "Ġthe", "in", "Ġin"];
  const specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
  const tokens = [...byteToChar, ...pieces, ...specials];
  return {
    model: "gpt2",
    tokens,
    tokenTypes: tokens.map((t) => (specials.includes(t) ? TokenType.control : TokenType.normal)),
    merges: ["Ġ t", "h e", "Ġt he", "i n", "Ġ in"],
    pre: "qwen2",
    bosId: tokens.length - 3,
    eosId: tokens.length - 1,
    addBos: false,
    addEos: false,
  };
}

let bases: Base[];
beforeAll(() => {
  const spm = syntheticModel("tiny-test", "q8_0");
  const spmPath = join(dir, "spm.gguf");
  writeGgufModel({ ...spm, chatTemplate: "{% for m in messages %}{{ m.content }}{% endfor %}" }, spmPath, {
    dtype: "q8_0",
  });
  const vocab = byteLevelVocab();
  const qwen: ModelConfig = plainConfig({
    maxSeqLen: spm.config.maxSeqLen,
    normEps: spm.config.normEps,
    ropeTheta: spm.config.ropeTheta,
    architecture: "qwen2",
    dim: 32,
    hiddenDim: 64,
    nLayers: 1,
    nHeads: 2,
    nKvHeads: 1,
    headDim: 16,
    vocabSize: vocab.tokens.length,
    ropeStyle: "neox",
    tiedEmbeddings: true,
    attentionBias: true,
  });
  const bpePath = join(dir, "bpe.gguf");
  writeGgufModel(modelOf(qwen, vocab, "{{ bos_token }}{{ messages[0].content }}"), bpePath, {
    dtype: "q8_0",
  });
  bases = [
    baseOf("kjv-demo", bundledModelPath),
    baseOf("tiny-test spm", spmPath),
    baseOf("qwen2 bpe", bpePath),
  ];
});

let fileCount = 0;
/** Writes the first `length` of `bytes` to a fresh file. */
function writeCase(bytes: Uint8Array, length = bytes.length): string {
  const path = join(dir, `case-${fileCount++}.gguf`);
  const fd = openSync(path, "w");
  try {
    writeSync(fd, bytes, 0, Math.min(bytes.length, length));
  } finally {
    closeSync(fd);
  }
  return path;
}

// ---- mutations of the bytes ----

const interestingValues = [0n, 1n, 2n, 3n, 4n, 5n, 7n, 8n, 9n, 12n, 13n, 63n, 64n, 255n, 256n, 4096n];
const hugeValues = [
  2n ** 31n - 1n,
  2n ** 31n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 53n + 1n,
  2n ** 63n,
  2n ** 64n - 1n,
];

/**
 * A new value for a field: small and interesting, huge, anything, or (`fromRest`) a small change of the old value
 * or, for a length, of the bytes left in the file after it.
 */
const fieldValue = fc.oneof(
  fc.constantFrom(...interestingValues, ...hugeValues).map((v) => ({ v, fromRest: false })),
  fc.integer({ min: -64, max: 64 }).map((d) => ({ v: BigInt(d), fromRest: true })),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => ({ v, fromRest: false })),
);

/** `arb` one time in four, else null. */
const sometimes = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: fc.constant(null), weight: 3 }, { arbitrary: arb, weight: 1 });

const byteMutation = fc.record({
  base: fc.nat(),
  fieldEdits: fc.array(fc.record({ kind: fc.nat(), index: fc.nat(), value: fieldValue }), { maxLength: 3 }),
  byteEdits: fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 6 }),
  insert: sometimes(
    fc.record({
      at: fc.nat(),
      bytes: fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 16 }),
        fc
          .constantFrom("\u001b[2J\u001b[31m", "\n\r\u0007", "\u202e\u2066", "\u00ff\u00fe")
          .map((s) => Buffer.from(s, "latin1")),
      ),
    }),
  ),
  cut: sometimes(fc.nat()),
});

function applyByteMutation(m: typeof byteMutation extends fc.Arbitrary<infer T> ? T : never): {
  base: Base;
  bytes: Buffer;
  length: number;
} {
  const base = bases[m.base % bases.length];
  let bytes = Buffer.from(base.bytes.subarray(0, base.headerEnd + 4096));
  const kinds = [...base.fields.values()];
  for (const edit of m.fieldEdits) {
    const fields = kinds[edit.kind % kinds.length];
    const f = fields[edit.index % fields.length];
    const old = f.bytes === 4 ? BigInt(bytes.readUInt32LE(f.at)) : bytes.readBigUInt64LE(f.at);
    const rest = BigInt(base.bytes.length - f.at - f.bytes);
    const v = edit.value.fromRest ? (f.what.endsWith("length") ? rest : old) + edit.value.v : edit.value.v;
    if (f.bytes === 4) bytes.writeUInt32LE(Number(BigInt.asUintN(32, v)), f.at);
    else bytes.writeBigUInt64LE(BigInt.asUintN(64, v), f.at);
  }
  for (const { at, byte } of m.byteEdits) bytes[at % base.headerEnd] = byte;
  let length = base.bytes.length;
  if (m.insert) {
    const at = m.insert.at % base.headerEnd;
    bytes = Buffer.concat([bytes.subarray(0, at), m.insert.bytes, bytes.subarray(at)]);
    length += m.insert.bytes.length;
  }
  if (m.cut !== null) length = m.cut % (base.headerEnd + 64);
  return { base, bytes, length };
}

/** The whole file as mutated: the header region edited, the tensor data as it was (or cut off). */
function writeMutated(base: Base, head: Buffer, length: number): string {
  const path = writeCase(head, length);
  const kept = base.bytes.length - (base.headerEnd + 4096);
  if (length > head.length && kept > 0) {
    const fd = openSync(path, "a");
    try {
      writeSync(fd, base.bytes, base.headerEnd + 4096, Math.min(kept, length - head.length));
    } finally {
      closeSync(fd);
    }
  }
  return path;
}

// ---- mutations of the metadata and tensor list (written by the writer) ----

const fileText = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.string({
    unit: fc.constantFrom("\u001b", "[", "3", "1", "m", "\n", "\u202e", "\u0085", "a", "▁", "<", ">"),
    maxLength: 30,
  }),
  fc.constantFrom("llama", "qwen2", "gpt2", "bert", "<s>", "</s>", "<unk>", "<0x0A>", "", "▁the", "Ġ t"),
);

/** Raw material for a value: each type takes what it can hold of it (a number wraps around an integer type). */
const rawValue = fc.record({
  n: fc.oneof(
    // biome-ignore format: one list
    fc.constantFrom(0, 1, 2, 3, 8, 16, 31, 32, 33, 63, 64, 255, 4096, 65535, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 53, -1,
      -(2 ** 31), 0.5, 1e-30, 1e38, Number.NaN, Infinity, -Infinity),
    fc.integer(),
    fc.double(),
  ),
  s: fileText,
  b: fc.boolean(),
});
type RawValue = typeof rawValue extends fc.Arbitrary<infer T> ? T : never;

type ScalarType = Exclude<GgufValueType, "array">;
const scalarTypes = ggufValueTypes.filter((t): t is ScalarType => t !== "array");
const intBits: Partial<Record<ScalarType, [number, boolean]>> = {
  uint8: [8, false],
  int8: [8, true],
  uint16: [16, false],
  int16: [16, true],
  uint32: [32, false],
  int32: [32, true],
};

function valueAs(type: ScalarType, r: RawValue): number | bigint | boolean | string {
  const whole = Number.isFinite(r.n) ? BigInt(Math.trunc(r.n)) : 0n;
  if (type === "string") return r.s;
  if (type === "bool") return r.b;
  if (type === "float32" || type === "float64") return r.n;
  if (type === "uint64") return BigInt.asUintN(64, whole);
  if (type === "int64") return BigInt.asIntN(64, whole);
  const [bits, signed] = intBits[type] as [number, boolean];
  return Number(signed ? BigInt.asIntN(bits, whole) : BigInt.asUintN(bits, whole));
}

const scalarOf = (type: ScalarType, r: RawValue) => ({ type, value: valueAs(type, r) }) as GgufValue;

/** An edit of the metadata or the tensor list; `pick` chooses among the existing keys or tensors. */
const semanticEdit = fc.oneof(
  // A new scalar, of the key's own type (null) or another.
  fc.record({
    op: fc.constant("value" as const),
    pick: fc.nat(),
    type: fc.option(fc.constantFrom(...scalarTypes)),
    raw: rawValue,
  }),
  // Some items of an array replaced: a vocabulary with odd tokens, scores or token types.
  fc.record({
    op: fc.constant("items" as const),
    pick: fc.nat(),
    items: fc.array(fc.record({ index: fc.nat(), raw: rawValue }), { minLength: 1, maxLength: 4 }),
  }),
  // A whole array of another item type, mostly of the same length.
  fc.record({
    op: fc.constant("array" as const),
    pick: fc.nat(),
    itemType: fc.constantFrom(...scalarTypes),
    lengthChange: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, fc.integer({ min: -3, max: 3 })),
    raws: fc.array(rawValue, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    op: fc.constant("add" as const),
    key: fileText,
    type: fc.constantFrom(...scalarTypes),
    raw: rawValue,
  }),
  fc.record({ op: fc.constant("delete" as const), pick: fc.nat() }),
  fc.record({ op: fc.constant("renameTensor" as const), pick: fc.nat(), name: fileText }),
  fc.record({ op: fc.constant("dropTensor" as const), pick: fc.nat() }),
  fc.record({
    op: fc.constant("reshapeTensor" as const),
    pick: fc.nat(),
    dtype: fc.constantFrom(...dtypes),
    shape: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 4 }),
  }),
);
type SemanticEdit = typeof semanticEdit extends fc.Arbitrary<infer T> ? T : never;

/** Applies `edits` to copies of the base's metadata and tensors; false when the writer could not express them. */
function writeEdited(base: Base, edits: SemanticEdit[]): string | undefined {
  const metadata = new Map(base.metadata);
  const tensors = [...base.tensors];
  const keys = () => [...metadata.keys()];
  for (const e of edits) {
    const key = "pick" in e ? keys()[e.pick % metadata.size] : "";
    const old = metadata.get(key);
    if (e.op === "value") {
      const type = e.type ?? (old && old.type !== "array" ? old.type : "uint32");
      metadata.set(key, scalarOf(type, e.raw));
    } else if (e.op === "add") metadata.set(e.key, scalarOf(e.type, e.raw));
    else if (e.op === "delete") metadata.delete(key);
    else if (e.op === "items" || e.op === "array") {
      if (old?.type !== "array" || old.itemType === "array") continue;
      if (e.op === "items") {
        const value = [...old.value] as unknown[];
        const itemType = old.itemType;
        for (const item of e.items) {
          if (value.length > 0) value[item.index % value.length] = valueAs(itemType, item.raw);
        }
        metadata.set(key, { ...old, value } as GgufValue);
      } else {
        const length = Math.max(0, old.value.length + e.lengthChange);
        const value = Array.from({ length }, (_, i) => valueAs(e.itemType, e.raws[i % e.raws.length]));
        metadata.set(key, { type: "array", itemType: e.itemType, value } as GgufValue);
      }
    } else if (tensors.length > 0) {
      const i = e.pick % tensors.length;
      if (e.op === "dropTensor") tensors.splice(i, 1);
      else if (e.op === "renameTensor") tensors[i] = { ...tensors[i], name: e.name };
      else {
        // Rows of whole blocks, as every GGUF type needs.
        const shape = e.shape.map((d, j) =>
          j === e.shape.length - 1 ? d * dtypeLayout[e.dtype].blockSize : d,
        );
        const data = new Uint8Array(tensorBytes(e.dtype, shape));
        tensors[i] = { ...tensors[i], dtype: e.dtype, shape, data: () => data };
      }
    }
  }
  const path = join(dir, `edited-${fileCount++}.gguf`);
  try {
    writeGgufFile(path, metadata, tensors);
  } catch (e) {
    if (e instanceof RangeError) return undefined; // not expressible in GGUF (a bad name, shape or alignment)
    throw e;
  }
  return path;
}

// ---- the properties ----

/** fast-check settings: a fixed number of runs, cut short on a slow machine rather than timing out. */
const scale = Number(process.env.FUZZ_SCALE ?? 1);
// Printed, so that a run which fails or hangs (a timeout shows no counterexample) can be replayed with FUZZ_SEED.
const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`GGUF fuzzing seed ${seed} (FUZZ_SEED=${seed} replays it)`);
const runs = (numRuns: number) => ({
  seed,
  numRuns: numRuns * scale,
  interruptAfterTimeLimit: 6000 * scale,
  markInterruptAsFailure: false,
});

describe("GGUF fuzzing: a mutated file loads or gives an InputError naming the file", () => {
  test("the unmutated files load", () => {
    for (const base of bases) expect(loadChecked(writeCase(base.bytes)), base.name).toBe("loaded");
  });

  test("mutated bytes, lengths, counts, types; inserted bytes; truncation", () => {
    const seen = new Set<Outcome>();
    fc.assert(
      fc.property(byteMutation, (m) => {
        const { base, bytes, length } = applyByteMutation(m);
        seen.add(loadChecked(writeMutated(base, bytes, length)));
      }),
      runs(400),
    );
    expect([...seen].sort()).toEqual(["loaded", "refused"]);
  });

  test("mutated metadata values and types, keys, tensor names, shapes and types", () => {
    const seen = new Set<Outcome>();
    fc.assert(
      fc.property(fc.nat(), fc.array(semanticEdit, { minLength: 1, maxLength: 3 }), (b, edits) => {
        const path = writeEdited(bases[b % bases.length], edits);
        if (path !== undefined) seen.add(loadChecked(path));
      }),
      runs(300),
    );
    expect([...seen].sort()).toEqual(["loaded", "refused"]);
  });

  test("random headers after a valid magic and version", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.constantFrom(2, 3), (rest, version) => {
        const head = Buffer.alloc(8);
        head.write("GGUF", 0, "latin1");
        head.writeUInt32LE(version, 4);
        expect(loadChecked(writeCase(Buffer.concat([head, rest])))).toBe("refused");
      }),
      runs(300),
    );
  });

  test("every value type id in every value position", () => {
    // Exhaustive where it is cheap: each metadata value type field of the small base set to each id 0..13.
    const base = bases[1];
    for (const f of base.fields.get("value type") ?? []) {
      for (let id = 0; id <= ggufValueTypes.length; id++) {
        const bytes = Buffer.from(base.bytes);
        bytes.writeUInt32LE(id, f.at);
        loadChecked(writeCase(bytes));
      }
    }
  });
});

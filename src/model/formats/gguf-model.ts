/**
 * A whole model from and to GGUF: the `<arch>.*` hyper-parameters become a ModelConfig (gguf-config.ts), the
 * `tokenizer.ggml.*` keys a VocabSpec, and the tensors (already under GGUF's names, fused ones split into
 * views of their rows) the weights.
 */

import { basename } from "node:path";
import {
  type Architecture,
  architectures,
  expectedTensors,
  type ModelConfig,
  tensorNames,
} from "../config.js";
import { dequantize, quantize } from "../dtype.js";
import { InputError, quoteFileString } from "../errors.js";
import { shortestFloat32 } from "../float-formats.js";
import type { LoadedModel } from "../model.js";
import { fileTypeOf, tensorType, type WeightType } from "../quant/mixes.js";
import { reorderRopeRows } from "../rope-order.js";
import { concatRows, type DType, type Tensor } from "../tensor.js";
import { createTokenizer } from "../tokenizer/create.js";
import { preTokenizerOf } from "../tokenizer/pretokenize-patterns.js";
import { withStripByName } from "../tokenizer/strip-by-name.js";
import type { VocabSpec } from "../tokenizer/tokenizer.js";
import { configMismatch } from "./config-mismatch.js";
import { ggufConfigMetadata, qkvName, readGgufConfig } from "./gguf-config.js";
import {
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
  type GgufValueType,
  readGgufTensor,
} from "./gguf-reader.js";
import { checkGgufShards, type GgufSplitLimit, readGgufShards, writeGgufShards } from "./gguf-split.js";
import { type GgufTensorEntry, writeGgufFile } from "./gguf-writer.js";

// ---- loading ----

/** A tensor info with the file (the shard, for a split model) that holds it. */
type ShardTensorInfo = GgufTensorInfo & { file: GgufFile };

/**
 * A tensor whose bytes are read from its file on first use. The native backend maps the file itself and
 * never touches them, so a served GGUF model's weights never enter the JS heap; the reference backend and
 * the converters read each tensor when they reach it.
 */
function lazyTensor({ file, ...info }: ShardTensorInfo): Tensor {
  let data: Uint8Array | undefined;
  return {
    dtype: info.dtype,
    shape: [...info.shape],
    file: { path: file.path, offset: info.fileOffset },
    get data() {
      data ??= readGgufTensor(file, info).data;
      return data;
    },
  };
}

/**
 * The model in the GGUF file at `path`, or in all the shards of the split model that `path` is one of
 * (gguf-split.ts).
 */
export function loadGgufModel(path: string): LoadedModel {
  return ggufModelFromHeaders(readGgufShards(path));
}

/**
 * The model GGUF headers describe, checked as loading checks it: one file's, or those of all the shards of a split
 * model in order (checked to be the whole set), the metadata from the first. Its tensors are read from their files
 * on first use. The Hub client calls this on remote headers to learn whether vellum can serve a model.
 */
export function ggufModelFromHeaders(shards: readonly GgufFile[]): LoadedModel {
  checkGgufShards(shards);
  const file = shards[0];
  const { path } = file;
  const fileTensors = shards.flatMap((shard) => shard.tensors.map((info) => ({ ...info, file: shard })));
  const meta = new Metadata(path, file.metadata);
  const arch = meta.string("general.architecture");
  if (!(architectures as readonly string[]).includes(arch)) {
    throw meta.error(
      "general.architecture",
      `is ${quoteFileString(arch)}: only ${architectures.join(", ")} are supported`,
    );
  }
  const vocab = readVocab(meta);
  const config = readGgufConfig(
    meta,
    arch as Architecture,
    vocab.tokens.length,
    new Set(fileTensors.map((t) => t.name)),
  );
  const infos = canonicalInfos(path, config, fileTensors);

  const expected = expectedTensors(config);
  const toRead: ShardTensorInfo[] = [];
  for (const [name, shape] of expected) {
    const info = infos.get(name);
    if (!info) throw new InputError(`${path}: tensor "${name}" is missing (expected shape [${shape}])`);
    if (info.shape.join() !== shape.join()) {
      throw new InputError(`${path}: tensor "${name}" has shape [${info.shape}], expected [${shape}]`);
    }
    toRead.push(info);
  }
  for (const name of infos.keys()) {
    // Ignoring a tensor llama.cpp would use, or one it would refuse, would silently compute something else.
    if (!expected.has(name)) {
      throw new InputError(
        `${path}: tensor ${quoteFileString(name)} is not supported (not part of the ${arch} model its metadata describes)`,
      );
    }
  }

  const tensors = new Map<string, Tensor>();
  for (const info of toRead) tensors.set(info.name, lazyTensor(info));
  return {
    config,
    tensors,
    tokenizer: createTokenizer(vocab, path),
    vocab,
    chatTemplate: meta.optional("tokenizer.chat_template", "string"),
    name: meta.optional("general.name", "string") ?? basename(path).replace(/\.gguf$/i, ""),
    format: "gguf",
    path,
  };
}

/** A tensor of the file that holds several canonical ones, rows one after another (llama.cpp's fused layouts). */
interface FusedTensor {
  name: string;
  /** Canonical name and row count of each part, in order. */
  parts: [string, number][];
}

/**
 * The fused tensors a config's GGUF may hold: a Q/K/V projection `attn_qkv` (every architecture, as llama.cpp's
 * create_tensor_qkv accepts it; with `always`, only those phi3 files hold), and phi3's `ffn_up` holding the
 * gate rows, then the up rows (ggml_swiglu activates the first half).
 */
function fusedTensors(c: ModelConfig, always: boolean): FusedTensor[] {
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  const fused: FusedTensor[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    if (!always || c.architecture === "phi3") {
      fused.push({
        name: qkvName(l, "weight"),
        parts: [
          [tensorNames.wq(l), qDim],
          [tensorNames.wk(l), kvDim],
          [tensorNames.wv(l), kvDim],
        ],
      });
      if (!always || c.attentionBias) {
        fused.push({
          name: qkvName(l, "bias"),
          parts: [
            [tensorNames.bq(l), qDim],
            [tensorNames.bk(l), kvDim],
            [tensorNames.bv(l), kvDim],
          ],
        });
      }
    }
    if (c.architecture === "phi3") {
      fused.push({
        name: tensorNames.ffnUp(l),
        parts: [
          [tensorNames.ffnGate(l), c.hiddenDim],
          [tensorNames.ffnUp(l), c.hiddenDim],
        ],
      });
    }
  }
  return fused;
}

/** The file's tensors under canonical names: each fused tensor becomes row-range views of its parts. */
function canonicalInfos<T extends GgufTensorInfo>(path: string, c: ModelConfig, infos: T[]): Map<string, T> {
  const fusedByName = new Map(fusedTensors(c, false).map((f) => [f.name, f]));
  const out = new Map<string, T>();
  const add = (info: T, from: string) => {
    if (out.has(info.name)) {
      throw new InputError(`${path}: tensor "${info.name}" is held both by itself and by "${from}"`);
    }
    out.set(info.name, info);
  };
  for (const info of infos) {
    const fused = fusedByName.get(info.name);
    if (!fused) {
      add(info, info.name);
      continue;
    }
    const rows = fused.parts.reduce((sum, [, n]) => sum + n, 0);
    const shape = info.name.endsWith(".bias") ? [rows] : [rows, c.dim];
    const rowBytes = info.byteLength / info.shape[0];
    if (info.shape.join() !== shape.join() || !Number.isInteger(rowBytes)) {
      throw new InputError(
        `${path}: tensor "${info.name}" has shape [${info.shape}] (${info.dtype}), expected [${shape}] holding ${fused.parts.map(([name]) => name).join(", ")}`,
      );
    }
    let row = 0;
    for (const [name, n] of fused.parts) {
      const view = {
        ...info,
        name,
        shape: [n, ...info.shape.slice(1)],
        fileOffset: info.fileOffset + row * rowBytes,
        byteLength: n * rowBytes,
      };
      add(view, info.name);
      row += n;
    }
  }
  return out;
}

function readVocab(meta: Metadata): VocabSpec {
  const model = meta.string("tokenizer.ggml.model");
  if (model !== "llama" && model !== "gpt2") {
    throw meta.error(
      "tokenizer.ggml.model",
      `is ${quoteFileString(model)}: only llama (SentencePiece) and gpt2 (byte-level BPE) are supported`,
    );
  }
  const tokens = meta.strings("tokenizer.ggml.tokens");
  const n = tokens.length;
  const perToken = (key: string) => {
    const values = meta.optionalNumbers(key);
    if (values && values.length !== n) throw meta.error(key, `has ${values.length} entries for ${n} tokens`);
    return values;
  };
  const tokenId = (key: string, fallback?: number) => {
    if (!meta.has(key)) return fallback !== undefined && fallback < n ? fallback : undefined;
    const id = meta.integer(key);
    if (id < 0 || id >= n) throw meta.error(key, `is ${id}, outside the ${n}-token vocabulary`);
    return id;
  };
  // llama.cpp's defaults for SentencePiece vocabularies that do not name their special tokens.
  const spm = model === "llama";
  const pre = meta.optional("tokenizer.ggml.pre", "string");
  const eotIds = ["eot", "eom"]
    .map((name) => tokenId(`tokenizer.ggml.${name}_token_id`))
    .filter((id) => id !== undefined);
  const spec: VocabSpec = {
    model,
    tokens,
    scores: perToken("tokenizer.ggml.scores"),
    tokenTypes: perToken("tokenizer.ggml.token_type"),
    merges: meta.has("tokenizer.ggml.merges") ? meta.strings("tokenizer.ggml.merges") : undefined,
    pre,
    bosId: tokenId("tokenizer.ggml.bos_token_id", spm ? 1 : undefined),
    eosId: tokenId("tokenizer.ggml.eos_token_id", spm ? 2 : undefined),
    unkId: tokenId("tokenizer.ggml.unknown_token_id", spm ? 0 : undefined),
    padId: tokenId("tokenizer.ggml.padding_token_id"),
    eotIds: eotIds.length === 0 ? undefined : eotIds,
    // llama.cpp adds BOS by default for SentencePiece and for the Llama 3 pre-tokenizers.
    addBos:
      meta.optional("tokenizer.ggml.add_bos_token", "bool") ??
      (spm || preTokenizerOf(pre)?.addBosByDefault === true),
    addEos: meta.optional("tokenizer.ggml.add_eos_token", "bool") ?? false,
    addSpacePrefix: meta.optional("tokenizer.ggml.add_space_prefix", "bool"),
  };
  return withStripByName(spec, meta.optional("general.name", "string"), meta.path);
}

/** "a uint32", "an array of string": the type of a value, for messages. */
function describe(v: GgufValue): string {
  return v.type === "array" ? `an array of ${v.itemType}` : `a ${v.type}`;
}

function isNumberType(type: GgufValueType): boolean {
  return type !== "string" && type !== "bool" && type !== "array";
}

/** The number types whose values are JS numbers (64-bit integers are bigints). */
function isSmallNumberType(type: GgufValueType): boolean {
  return isNumberType(type) && type !== "uint64" && type !== "int64";
}

type ScalarOf<T extends "string" | "bool"> = T extends "string" ? string : boolean;

/** Typed access to GGUF metadata; a missing key or a wrong type is an InputError naming the file and the key. */
class Metadata {
  constructor(
    readonly path: string,
    private readonly values: ReadonlyMap<string, GgufValue>,
  ) {}

  error(key: string, problem: string): InputError {
    return new InputError(`${this.path}: metadata key "${key}" ${problem}`);
  }

  private missing(key: string): never {
    throw this.error(key, "is missing");
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  value(key: string): GgufValue | undefined {
    return this.values.get(key);
  }

  private get(key: string): GgufValue {
    return this.values.get(key) ?? this.missing(key);
  }

  optional<T extends "string" | "bool">(key: string, type: T): ScalarOf<T> | undefined {
    if (!this.has(key)) return undefined;
    const v = this.get(key);
    if (v.type !== type) throw this.error(key, `is ${describe(v)}, expected a ${type}`);
    return v.value as ScalarOf<T>;
  }

  string(key: string): string {
    return this.optional(key, "string") ?? this.missing(key);
  }

  /** Any integer type (converters differ: uint32, int32, uint64 …). */
  integer(key: string): number {
    const v = this.get(key);
    if (!isNumberType(v.type) || v.type.startsWith("float")) {
      throw this.error(key, `is ${describe(v)}, expected an integer`);
    }
    const n = Number(v.value);
    if (!Number.isSafeInteger(n)) throw this.error(key, `is ${v.value}, too large`);
    return n;
  }

  /** A finite number; float32 values come back as the shortest decimal that rounds to them. */
  number(key: string): number {
    const v = this.get(key);
    if (typeof v.value !== "number") throw this.error(key, `is ${describe(v)}, expected a number`);
    if (!Number.isFinite(v.value)) throw this.error(key, `is ${v.value}, must be finite`);
    return v.type === "float32" ? shortestFloat32(v.value) : v.value;
  }

  positiveNumber(key: string): number {
    const v = this.number(key);
    if (!(v > 0)) throw this.error(key, `is ${v}, must be positive`);
    return v;
  }

  strings(key: string): string[] {
    const v = this.get(key);
    if (v.type !== "array" || v.itemType !== "string") {
      throw this.error(key, `is ${describe(v)}, expected an array of strings`);
    }
    return v.value;
  }

  /** An array of any number type up to 32 bits (scores are float32, token types int32), or undefined when absent. */
  optionalNumbers(key: string): number[] | undefined {
    if (!this.has(key)) return undefined;
    const v = this.get(key);
    if (v.type !== "array" || !isSmallNumberType(v.itemType)) {
      throw this.error(key, `is ${describe(v)}, expected an array of 8- to 32-bit numbers`);
    }
    return v.value as number[];
  }
}

// ---- writing ----

export interface WriteGgufOptions {
  /** The type of the weight matrices, or a llama.cpp mix (mixes.ts); 1-D tensors (norms, biases) stay f32. */
  dtype: WeightType;
  /** More keys (e.g. general.synthetic); they override the ones written from the model. */
  extraMetadata?: Map<string, GgufValue>;
  /** Write llama.cpp's split GGUF shards named after `path` (gguf-split.ts) instead of one file. */
  split?: GgufSplitLimit;
}

/** Writes `model` to `path`, or to the shards of a split model with `opts.split`; returns the paths written. */
export function writeGgufModel(model: LoadedModel, path: string, opts: WriteGgufOptions): string[] {
  if (!model.vocab) {
    throw new InputError(
      `${model.path}: the tokenizer of this model is not available as a vocabulary, so it cannot be written to GGUF`,
    );
  }
  // GGUF llama rotates interleaved pairs; a neox (Hugging Face) llama gets its Q/K rows reordered to match.
  const toInterleaved = model.config.architecture === "llama" && model.config.ropeStyle === "neox";
  const c: ModelConfig = toInterleaved ? { ...model.config, ropeStyle: "interleaved" } : model.config;
  const headsOf = new Map<string, number>();
  for (let l = 0; l < c.nLayers; l++) {
    for (const name of [tensorNames.wq(l), tensorNames.bq(l)]) headsOf.set(name, c.nHeads);
    for (const name of [tensorNames.wk(l), tensorNames.bk(l)]) headsOf.set(name, c.nKvHeads);
  }
  const source = (name: string, shape: number[]): Tensor => {
    const t = model.tensors.get(name);
    if (!t || t.shape.join() !== shape.join()) {
      throw new InputError(
        `${model.path}: tensor "${name}" is ${t ? `of shape [${t.shape}]` : "missing"}, expected [${shape}]`,
      );
    }
    const heads = headsOf.get(name);
    return toInterleaved && heads !== undefined ? reorderRopeRows(t, heads, "interleaved") : t;
  };

  for (const [name, shape] of expectedTensors(c)) source(name, shape); // checked up front: a bad model leaves no file
  const entries: GgufTensorEntry[] = fileTensors(c).map((t) => {
    const dtype = tensorType(opts.dtype, t.name, t.shape, c);
    return {
      name: t.name,
      dtype,
      shape: t.shape,
      data: () => concatRows(t.parts.map(([part, shape]) => convert(source(part, shape), dtype))).data,
    };
  });

  const metadata = modelMetadata(model, c, model.vocab, opts.dtype);
  checkReadBack(model.path, c, metadata, model.vocab.tokens.length, new Set(entries.map((e) => e.name)));
  for (const [key, value] of opts.extraMetadata ?? []) metadata.set(key, value);
  const name = metadata.get("general.name");
  checkStripReadBack(model.path, model.vocab, name?.type === "string" ? name.value : undefined);
  if (opts.split) return writeGgufShards(path, metadata, entries, opts.split);
  writeGgufFile(path, metadata, entries);
  return [path];
}

/**
 * Refuses a vocabulary whose whitespace stripping would not come back: GGUF has no key for it, llama.cpp
 * decides it by general.name (strip-by-name.ts), so a tokenizer.json's rstrip/lstrip flags survive only in a
 * model named as llama.cpp expects.
 */
function checkStripReadBack(modelPath: string, vocab: VocabSpec, name: string | undefined): void {
  const readBack = withStripByName(vocab, name, `${modelPath}: cannot be written as GGUF`);
  for (const [side, key] of [
    ["after", "rstripIds"],
    ["before", "lstripIds"],
  ] as const) {
    const want = new Set(vocab[key]);
    const got = new Set(readBack[key]);
    const differs = [...want].find((id) => !got.has(id)) ?? [...got].find((id) => !want.has(id));
    if (differs === undefined) continue;
    throw new InputError(
      `${modelPath}: cannot be written as GGUF: its token ${quoteFileString(vocab.tokens[differs])} ${want.has(differs) ? "swallows" : "keeps"} the whitespace ${side} it, which GGUF cannot hold (llama.cpp decides it by general.name, here ${name === undefined ? "absent" : quoteFileString(name)})`,
    );
  }
}

/**
 * Reads the written metadata back as llama.cpp would, and refuses a model whose config would not come back:
 * one llama.cpp would compute differently (a switch it derives from the architecture, a pattern of windows
 * no period gives …).
 */
function checkReadBack(
  modelPath: string,
  want: ModelConfig,
  metadata: Map<string, GgufValue>,
  vocabSize: number,
  fileTensors: Set<string>,
): void {
  const cannot = `${modelPath}: cannot be written as GGUF ${want.architecture}`;
  let got: ModelConfig;
  try {
    got = readGgufConfig(new Metadata("", metadata), want.architecture, vocabSize, fileTensors);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    throw new InputError(`${cannot}: ${e.message.replace(/^: /, "")}`);
  }
  const mismatch = configMismatch(want, got);
  if (mismatch) throw new InputError(`${cannot}: read back by llama.cpp, ${mismatch}`);
}

/** A tensor as the GGUF file holds it: fused tensors (fusedTensors) hold their parts' rows one after another. */
interface FileTensor {
  name: string;
  shape: number[];
  /** Canonical name and shape of each part, in order (the tensor itself when it is not fused). */
  parts: [string, number[]][];
}

function fileTensors(c: ModelConfig): FileTensor[] {
  const fusedOf = new Map<string, FusedTensor>();
  for (const fused of fusedTensors(c, true)) for (const [part] of fused.parts) fusedOf.set(part, fused);
  const expected = expectedTensors(c);
  const out: FileTensor[] = [];
  for (const [name, shape] of expected) {
    const fused = fusedOf.get(name);
    if (!fused) {
      out.push({ name, shape, parts: [[name, shape]] });
    } else if (fused.parts[0][0] === name) {
      const rows = fused.parts.reduce((sum, [, n]) => sum + n, 0);
      const parts = fused.parts.map(([part]): [string, number[]] => [part, expected.get(part) ?? []]);
      out.push({ name: fused.name, shape: [rows, ...shape.slice(1)], parts });
    }
  }
  return out;
}

/**
 * The type each of `c`'s tensors is stored in when written to GGUF as `weightType` (mixes.ts decides it by the
 * file's tensor, so the parts of a fused tensor share its type).
 */
export function storedDTypes(c: ModelConfig, weightType: WeightType): Map<string, DType> {
  const types = new Map<string, DType>();
  for (const t of fileTensors(c)) {
    const dtype = tensorType(weightType, t.name, t.shape, c);
    for (const [part] of t.parts) types.set(part, dtype);
  }
  return types;
}

function convert(t: Tensor, dtype: DType): Tensor {
  return t.dtype === dtype ? t : quantize(dequantize(t), t.shape, dtype);
}

function modelMetadata(
  model: LoadedModel,
  c: ModelConfig,
  vocab: VocabSpec,
  weightType: WeightType,
): Map<string, GgufValue> {
  const u32 = (value: number): GgufValue => ({ type: "uint32", value });
  const str = (value: string): GgufValue => ({ type: "string", value });
  const bool = (value: boolean): GgufValue => ({ type: "bool", value });
  const m = new Map<string, GgufValue>([
    ["general.architecture", str(c.architecture)],
    ["general.name", str(model.name)],
    ["general.alignment", u32(32)],
    ["general.file_type", u32(fileTypeOf(weightType))],
    ...ggufConfigMetadata(c),
    ["tokenizer.ggml.model", str(vocab.model)],
    ["tokenizer.ggml.tokens", { type: "array", itemType: "string", value: vocab.tokens }],
  ]);
  if (vocab.scores) {
    m.set("tokenizer.ggml.scores", { type: "array", itemType: "float32", value: vocab.scores });
  }
  if (vocab.tokenTypes) {
    m.set("tokenizer.ggml.token_type", { type: "array", itemType: "int32", value: vocab.tokenTypes });
  }
  if (vocab.merges) {
    m.set("tokenizer.ggml.merges", { type: "array", itemType: "string", value: vocab.merges });
  }
  if (vocab.pre !== undefined) m.set("tokenizer.ggml.pre", str(vocab.pre));
  const ids: [string, number | undefined][] = [
    ["bos_token_id", vocab.bosId],
    ["eos_token_id", vocab.eosId],
    ["unknown_token_id", vocab.unkId],
    ["padding_token_id", vocab.padId],
    // GGUF has one eot key; further stop ids have no standard place.
    ["eot_token_id", vocab.eotIds?.[0]],
  ];
  for (const [key, id] of ids) if (id !== undefined) m.set(`tokenizer.ggml.${key}`, u32(id));
  m.set("tokenizer.ggml.add_bos_token", bool(vocab.addBos));
  m.set("tokenizer.ggml.add_eos_token", bool(vocab.addEos));
  if (vocab.addSpacePrefix !== undefined) {
    m.set("tokenizer.ggml.add_space_prefix", bool(vocab.addSpacePrefix));
  }
  if (model.chatTemplate !== undefined) m.set("tokenizer.chat_template", str(model.chatTemplate));
  return m;
}

/**
 * A whole model from and to GGUF: the `<arch>.*` hyper-parameters become a ModelConfig, the
 * `tokenizer.ggml.*` keys a VocabSpec, and the tensors (already under GGUF's names) the weights.
 */

import { basename } from "node:path";
import { type Architecture, expectedTensors, type ModelConfig, plainConfig, tensorNames } from "../config.js";
import { dequantize, dtypeLayout, quantize } from "../dtype.js";
import { InputError, quoteFileString } from "../errors.js";
import type { LoadedModel } from "../model.js";
import { reorderRopeRows } from "../rope-order.js";
import type { DType, Tensor } from "../tensor.js";
import { createTokenizer } from "../tokenizer/create.js";
import { preTokenizerOf } from "../tokenizer/pretokenize-patterns.js";
import type { VocabSpec } from "../tokenizer/tokenizer.js";
import {
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
  type GgufValueType,
  readGgufFile,
  readGgufTensor,
} from "./gguf-reader.js";
import { type GgufTensorEntry, writeGgufFile } from "./gguf-writer.js";

// ---- loading ----

/**
 * A tensor whose bytes are read from the file on first use. The native backend maps the file itself and
 * never touches them, so a served GGUF model's weights never enter the JS heap; the reference backend and
 * the converters read each tensor when they reach it.
 */
function lazyTensor(file: GgufFile, info: GgufTensorInfo): Tensor {
  let data: Uint8Array | undefined;
  return {
    dtype: info.dtype,
    shape: [...info.shape],
    get data() {
      data ??= readGgufTensor(file, info).data;
      return data;
    },
  };
}

export function loadGgufModel(path: string): LoadedModel {
  const file = readGgufFile(path);
  const meta = new Metadata(file);
  const arch = meta.string("general.architecture");
  if (arch !== "llama" && arch !== "qwen2") {
    throw meta.error(
      "general.architecture",
      `is ${quoteFileString(arch)}: only llama and qwen2 are supported`,
    );
  }
  const vocab = readVocab(meta);
  const infos = new Map(file.tensors.map((t) => [t.name, t]));
  const config = readConfig(meta, arch, vocab.tokens.length, (name) => infos.has(name));
  // Checked before listing the expected tensors: a corrupt count would list billions of them.
  if (config.nLayers > file.tensors.length) {
    throw meta.error(
      `${arch}.block_count`,
      `is ${config.nLayers}, but the file holds only ${file.tensors.length} tensors`,
    );
  }

  const expected = expectedTensors(config);
  const toRead: GgufTensorInfo[] = [];
  for (const [name, shape] of expected) {
    const info = infos.get(name);
    if (!info) throw new InputError(`${path}: tensor "${name}" is missing (expected shape [${shape}])`);
    if (info.shape.join() !== shape.join()) {
      throw new InputError(`${path}: tensor "${name}" has shape [${info.shape}], expected [${shape}]`);
    }
    toRead.push(info);
  }
  for (const name of infos.keys()) {
    // Ignoring a tensor such as rope_freqs.weight (Llama 3 RoPE scaling) would silently compute something else.
    if (!expected.has(name)) {
      throw new InputError(
        `${path}: tensor ${quoteFileString(name)} is not supported (not part of a plain ${arch} model)`,
      );
    }
  }

  const tensors = new Map<string, Tensor>();
  for (const info of toRead) tensors.set(info.name, lazyTensor(file, info));
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

function readConfig(
  meta: Metadata,
  arch: Architecture,
  vocabSize: number,
  hasTensor: (name: string) => boolean,
): ModelConfig {
  const count = (key: string) => {
    const v = meta.integer(`${arch}.${key}`);
    if (v < 1) throw meta.error(`${arch}.${key}`, `is ${v}, must be positive`);
    return v;
  };
  const optionalCount = (key: string) => (meta.has(`${arch}.${key}`) ? count(key) : undefined);
  const dim = count("embedding_length");
  const nHeads = count("attention.head_count");
  const nKvHeads = optionalCount("attention.head_count_kv") ?? nHeads;
  if (nHeads % nKvHeads !== 0) {
    throw meta.error(
      `${arch}.attention.head_count_kv`,
      `(${nKvHeads}) does not divide head_count (${nHeads})`,
    );
  }
  const headDim = optionalCount("attention.key_length") ?? dim / nHeads;
  if (!Number.isInteger(headDim)) {
    throw meta.error(`${arch}.attention.head_count`, `(${nHeads}) does not divide embedding_length (${dim})`);
  }
  // One head width for Q, K, V and RoPE is all the forward pass knows.
  for (const key of ["attention.value_length", "rope.dimension_count"]) {
    const v = optionalCount(key);
    if (v !== undefined && v !== headDim) {
      throw meta.error(`${arch}.${key}`, `is ${v}; only ${headDim} (the head width) is supported`);
    }
  }
  const ropeScaling = meta.optional(`${arch}.rope.scaling.type`, "string");
  if (ropeScaling !== undefined && ropeScaling !== "none") {
    throw meta.error(`${arch}.rope.scaling.type`, `${quoteFileString(ropeScaling)} is not supported`);
  }
  const declaredVocab = optionalCount("vocab_size");
  if (declaredVocab !== undefined && declaredVocab !== vocabSize) {
    throw meta.error(
      `${arch}.vocab_size`,
      `is ${declaredVocab} but tokenizer.ggml.tokens has ${vocabSize} tokens`,
    );
  }
  return plainConfig({
    architecture: arch,
    dim,
    hiddenDim: count("feed_forward_length"),
    nLayers: count("block_count"),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    maxSeqLen: count("context_length"),
    normEps: meta.positiveNumber(`${arch}.attention.layer_norm_rms_epsilon`),
    ropeTheta: meta.has(`${arch}.rope.freq_base`) ? meta.positiveNumber(`${arch}.rope.freq_base`) : 10000,
    ropeStyle: arch === "llama" ? "interleaved" : "neox",
    tiedEmbeddings: !hasTensor(tensorNames.output),
    attentionBias: hasTensor(tensorNames.bq(0)),
  });
}

/**
 * The shortest decimal that rounds to the same float32: GGUF stores 1e-5 as 9.99999974737875e-6, and the
 * config should say 1e-5 again (the forward pass rounds it to the same float32 anyway).
 */
function shortestFloat32(x: number): number {
  for (let digits = 1; digits < 17; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === Math.fround(x)) return candidate;
  }
  return x;
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
  return {
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
  constructor(private readonly file: GgufFile) {}

  error(key: string, problem: string): InputError {
    return new InputError(`${this.file.path}: metadata key "${key}" ${problem}`);
  }

  private missing(key: string): never {
    throw this.error(key, "is missing");
  }

  has(key: string): boolean {
    return this.file.metadata.has(key);
  }

  private get(key: string): GgufValue {
    return this.file.metadata.get(key) ?? this.missing(key);
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

  /** A positive finite number; float32 values come back as the shortest decimal that rounds to them. */
  positiveNumber(key: string): number {
    const v = this.get(key);
    if (typeof v.value !== "number") throw this.error(key, `is ${describe(v)}, expected a number`);
    if (!(v.value > 0 && Number.isFinite(v.value))) throw this.error(key, `is ${v.value}, must be positive`);
    return v.type === "float32" ? shortestFloat32(v.value) : v.value;
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
  /** The type of 2-D weights; 1-D tensors (norms, biases) stay f32. */
  dtype: DType;
  /** More keys (e.g. general.synthetic); they override the ones written from the model. */
  extraMetadata?: Map<string, GgufValue>;
}

/** llama.cpp's llama_ftype numbers for general.file_type. */
const fileTypeOf: Record<DType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k: 15, q6_k: 18, bf16: 32 };

export function writeGgufModel(model: LoadedModel, path: string, opts: WriteGgufOptions): void {
  const c = model.config;
  if (!model.vocab) {
    throw new InputError(
      `${model.path}: the tokenizer of this model is not available as a vocabulary, so it cannot be written to GGUF`,
    );
  }
  if (c.architecture === "qwen2" && c.ropeStyle === "interleaved") {
    throw new InputError(
      `${model.path}: a qwen2 model with interleaved RoPE cannot be written to GGUF (qwen2 GGUF is neox)`,
    );
  }
  const metadata = modelMetadata(model, model.vocab, opts.dtype);
  for (const [key, value] of opts.extraMetadata ?? []) metadata.set(key, value);

  // GGUF llama rotates interleaved pairs; a neox (Hugging Face) llama gets its Q/K rows reordered to match.
  const toInterleaved = c.architecture === "llama" && c.ropeStyle === "neox";
  const headsOf = new Map<string, number>();
  for (let l = 0; l < c.nLayers; l++) {
    for (const name of [tensorNames.wq(l), tensorNames.bq(l)]) headsOf.set(name, c.nHeads);
    for (const name of [tensorNames.wk(l), tensorNames.bk(l)]) headsOf.set(name, c.nKvHeads);
  }

  const entries: GgufTensorEntry[] = [];
  for (const [name, shape] of expectedTensors(c)) {
    const source = model.tensors.get(name);
    if (!source || source.shape.join() !== shape.join()) {
      throw new InputError(
        `${model.path}: tensor "${name}" is ${source ? `of shape [${source.shape}]` : "missing"}, expected [${shape}]`,
      );
    }
    const dtype = storedDType(shape, opts.dtype);
    const heads = headsOf.get(name);
    entries.push({
      name,
      dtype,
      shape,
      data: () =>
        convert(
          toInterleaved && heads !== undefined ? reorderRopeRows(source, heads, "interleaved") : source,
          dtype,
        ),
    });
  }
  writeGgufFile(path, metadata, entries);
}

/** llama.cpp's converter rule: 1-D stays f32; a quantized type needs whole 32-value blocks per row, else f16. */
export function storedDType(shape: number[], requested: DType): DType {
  if (shape.length === 1) return "f32";
  if (shape[shape.length - 1] % dtypeLayout[requested].blockSize !== 0) return "f16";
  return requested;
}

function convert(t: Tensor, dtype: DType): Uint8Array {
  return t.dtype === dtype ? t.data : quantize(dequantize(t), t.shape, dtype).data;
}

function modelMetadata(model: LoadedModel, vocab: VocabSpec, dtype: DType): Map<string, GgufValue> {
  const c = model.config;
  const a = c.architecture;
  const u32 = (value: number): GgufValue => ({ type: "uint32", value });
  const f32 = (value: number): GgufValue => ({ type: "float32", value });
  const str = (value: string): GgufValue => ({ type: "string", value });
  const bool = (value: boolean): GgufValue => ({ type: "bool", value });
  const m = new Map<string, GgufValue>([
    ["general.architecture", str(a)],
    ["general.name", str(model.name)],
    ["general.alignment", u32(32)],
    ["general.file_type", u32(fileTypeOf[dtype])],
    [`${a}.vocab_size`, u32(c.vocabSize)],
    [`${a}.context_length`, u32(c.maxSeqLen)],
    [`${a}.embedding_length`, u32(c.dim)],
    [`${a}.block_count`, u32(c.nLayers)],
    [`${a}.feed_forward_length`, u32(c.hiddenDim)],
    [`${a}.attention.head_count`, u32(c.nHeads)],
    [`${a}.attention.head_count_kv`, u32(c.nKvHeads)],
    [`${a}.attention.key_length`, u32(c.headDim)],
    [`${a}.attention.value_length`, u32(c.headDim)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(c.normEps)],
    [`${a}.rope.dimension_count`, u32(c.headDim)],
    [`${a}.rope.freq_base`, f32(c.ropeTheta)],
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

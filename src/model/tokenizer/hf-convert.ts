import { InputError, quoteFileString, showFileValue } from "../errors.js";
import { byteLevelPreTokenizer } from "./byte-bpe.js";
import { preNameOfHfPreTokenizer, preTokenizerOf } from "./pretokenize-patterns.js";
import { SPACE_MARK, sentencePieceTokenTypes } from "./sentencepiece.js";
import { type HfTokenizerConfig, TokenType, type VocabSpec } from "./tokenizer.js";

export type { HfTokenizerConfig };

/**
 * Conversions between a VocabSpec (GGUF's tokenizer-as-data) and Hugging Face's tokenizer.json +
 * tokenizer_config.json, both ways.
 */

/** The parts of tokenizer.json read here. */
interface HfTokenizerJson {
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    merges?: (string | [string, string])[];
    byte_fallback?: boolean;
    unk_token?: string | null;
  };
  added_tokens?: { id: number; content: string; special?: boolean; lstrip?: boolean; rstrip?: boolean }[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  decoder?: unknown;
}

/** A token name from tokenizer_config.json, which writes it as a string or as {content: …}. */
export function configTokenText(value: HfTokenizerConfig["bos_token"]): string | undefined {
  if (typeof value === "string") return value;
  return value?.content ?? undefined;
}

type TemplateItem =
  | { SpecialToken: { id: string; type_id: number } }
  | { Sequence: { id: "A" | "B"; type_id: number } };

/**
 * HF TemplateProcessing that adds BOS / EOS around the text (what LlamaTokenizerFast builds from
 * add_bos_token / add_eos_token).
 */
function bosEosPostProcessor(spec: VocabSpec): object {
  const bos = spec.addBos && spec.bosId !== undefined ? spec.tokens[spec.bosId] : undefined;
  const eos = spec.addEos && spec.eosId !== undefined ? spec.tokens[spec.eosId] : undefined;
  const around = (seq: "A" | "B", typeId: number): TemplateItem[] => [
    ...(bos === undefined ? [] : [{ SpecialToken: { id: bos, type_id: typeId } }]),
    { Sequence: { id: seq, type_id: typeId } },
    ...(eos === undefined ? [] : [{ SpecialToken: { id: eos, type_id: typeId } }]),
  ];
  const specialTokens: Record<string, { id: string; ids: number[]; tokens: string[] }> = {};
  for (const [text, id] of [
    [bos, spec.bosId],
    [eos, spec.eosId],
  ] as const) {
    if (text !== undefined && id !== undefined) specialTokens[text] = { id: text, ids: [id], tokens: [text] };
  }
  return {
    type: "TemplateProcessing",
    single: around("A", 0),
    pair: [...around("A", 0), ...around("B", 1)],
    special_tokens: specialTokens,
  };
}

/**
 * Added tokens: control and unknown tokens as special, user-defined ones as plain added tokens, each
 * stripping whitespace as the spec says.
 */
function addedTokens(spec: VocabSpec, types: readonly number[]): object[] {
  const lstrip = new Set(spec.lstripIds);
  const rstrip = new Set(spec.rstripIds);
  const added: object[] = [];
  types.forEach((type, id) => {
    const special = type === TokenType.control || type === TokenType.unknown;
    if (!special && type !== TokenType.userDefined) return;
    added.push({
      id,
      content: spec.tokens[id],
      single_word: false,
      lstrip: lstrip.has(id),
      rstrip: rstrip.has(id),
      normalized: false,
      special,
    });
  });
  return added;
}

function vocabObject(tokens: readonly string[]): Record<string, number> {
  // No prototype: pieces such as "valueOf" or "__proto__" must be keys like any other.
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((token, id) => {
    if (!Object.hasOwn(vocab, token)) vocab[token] = id;
  });
  return vocab;
}

/**
 * SentencePiece merges the way HF's LlamaConverter derives them from the scores: every normal piece that
 * splits into two pieces of the vocabulary gives one merge per split; merges are ordered by the merged
 * piece's score, highest first (stable, so by piece id, then by the ids of the two halves).
 */
function mergesFromScores(spec: VocabSpec, types: readonly number[]): [string, string][] {
  const scores = spec.scores as number[];
  const ids = new Map<string, number>();
  spec.tokens.forEach((t, id) => {
    if (!ids.has(t)) ids.set(t, id);
  });
  const merges: { left: string; right: string; score: number; leftId: number; rightId: number }[] = [];
  spec.tokens.forEach((piece, id) => {
    if (types[id] !== TokenType.normal) return;
    const chars = Array.from(piece);
    for (let cut = 1; cut < chars.length; cut++) {
      const left = chars.slice(0, cut).join("");
      const right = chars.slice(cut).join("");
      const leftId = ids.get(left);
      const rightId = ids.get(right);
      if (leftId === undefined || rightId === undefined) continue;
      if (types[leftId] !== TokenType.normal || types[rightId] !== TokenType.normal) continue;
      merges.push({ left, right, score: scores[id], leftId, rightId });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.leftId - b.leftId || a.rightId - b.rightId);
  return merges.map((m) => [m.left, m.right]);
}

/**
 * A HF tokenizer.json equivalent to `spec`:
 * - `llama` (SentencePiece) the way HF's LlamaConverter writes it (legacy form): BPE with byte_fallback and
 *   merges derived from the scores, normalizer Prepend ▁ (if addSpacePrefix) + Replace " " → ▁, decoder
 *   Replace ▁ → " ", ByteFallback, Fuse, Strip one leading space.
 * - `gpt2` (byte-level): BPE with the merges, pre-tokenizer Split by the `pre` regex + ByteLevel (GPT-2's
 *   own ByteLevel regex for the default pattern), decoder ByteLevel.
 * Both add BOS/EOS with a TemplateProcessing post-processor as addBos/addEos say.
 */
export function tokenizerJsonFromVocab(spec: VocabSpec): object {
  return spec.model === "llama" ? sentencePieceJson(spec) : byteLevelJson(spec);
}

function sentencePieceJson(spec: VocabSpec): object {
  const types = sentencePieceTokenTypes(spec);
  const unkId = spec.unkId ?? types.indexOf(TokenType.unknown);
  const addSpacePrefix = spec.addSpacePrefix ?? true;
  const replaceSpace = { type: "Replace", pattern: { String: " " }, content: SPACE_MARK };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens(spec, types),
    normalizer: {
      type: "Sequence",
      normalizers: addSpacePrefix ? [{ type: "Prepend", prepend: SPACE_MARK }, replaceSpace] : [replaceSpace],
    },
    pre_tokenizer: null,
    post_processor: bosEosPostProcessor(spec),
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: SPACE_MARK }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        ...(addSpacePrefix ? [{ type: "Strip", content: " ", start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unkId >= 0 ? spec.tokens[unkId] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabObject(spec.tokens),
      merges: mergesFromScores(spec, types),
    },
  };
}

function byteLevelJson(spec: VocabSpec): object {
  const types = spec.tokenTypes ?? spec.tokens.map(() => TokenType.normal);
  const pre = byteLevelPreTokenizer(spec, "tokenizer");
  if (pre.hf === undefined) {
    throw new InputError(`tokenizer.ggml.pre ${showFileValue(spec.pre)} has no tokenizer.json equivalent`);
  }
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens(spec, types),
    normalizer: null,
    pre_tokenizer: pre.hf,
    post_processor: bosEosPostProcessor(spec),
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges,
      vocab: vocabObject(spec.tokens),
      merges: (spec.merges ?? []).map((line) => line.split(" ")),
    },
  };
}

/** The tokenizer_config.json that goes with tokenizerJsonFromVocab(spec). */
export function tokenizerConfigFromVocab(spec: VocabSpec, chatTemplate?: string): HfTokenizerConfig & object {
  const name = (id: number | undefined) => (id === undefined ? null : spec.tokens[id]);
  return {
    add_bos_token: spec.addBos,
    add_eos_token: spec.addEos,
    bos_token: name(spec.bosId),
    eos_token: name(spec.eosId),
    unk_token: name(spec.unkId),
    clean_up_tokenization_spaces: false,
    ...(spec.model === "llama" ? { legacy: true, tokenizer_class: "LlamaTokenizer" } : {}),
    ...(chatTemplate === undefined ? {} : { chat_template: chatTemplate }),
  };
}

/**
 * Score given to SentencePiece pieces that no merge produces (characters, bytes, special tokens). A
 * multi-character normal piece with this score still merges, last of all, as SentencePiece would.
 */
const NO_MERGE_SCORE = -1e9;
const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;

/**
 * Added tokens that llama.cpp's converter makes control tokens although tokenizer.json does not mark them
 * special (convert_hf_to_gguf.py's does_token_look_special).
 */
function looksSpecial(token: string): boolean {
  return (
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(token) ||
    (token.startsWith("<|") && token.endsWith("|>")) ||
    (token.startsWith("<\uFF5C") && token.endsWith("\uFF5C>")) ||
    (token.startsWith("<unused") && token.endsWith(">"))
  );
}

export interface VocabFromTokenizerJsonOptions {
  /**
   * The model's vocabulary size (its embedding rows). Ids the tokenizer leaves unused up to it become
   * "[PAD<id>]" tokens of type unused, as llama.cpp's converter writes them; a SentencePiece tokenizer's
   * added tokens past it are dropped (as the converter does), any other token past it is an error.
   */
  vocabSize?: number;
}

/**
 * The VocabSpec llama.cpp's convert_hf_to_gguf.py writes for an HF tokenizer (for HF → GGUF conversion and
 * synth-model's --tokenizer):
 * - a BPE model with byte_fallback (Llama 2, Mistral, Gemma, Phi-3: SentencePiece) becomes `llama` with
 *   pre "default". The converter reads SentencePiece's tokenizer.model for the scores; from tokenizer.json
 *   they are rebuilt from the merge order: a piece's score is minus the rank of the first merge producing
 *   it, so pieces merge in the same order.
 * - a BPE model with a ByteLevel pre-tokenizer or decoder becomes `gpt2`, with the pre name of its
 *   pre-tokenizer.
 * Added tokens marked special, or looking special, are control tokens; other added tokens are user-defined,
 * with ▁ written as a space, and keep their rstrip/lstrip flags (which GGUF cannot hold: llama.cpp derives them
 * from the model's name). Ids no token has are "[PAD<id>]" of type unused. BOS/EOS/UNK/PAD are the added
 * tokens tokenizer_config.json names; add_bos/add_eos come from the post-processor's template, overridden
 * by tokenizer_config.json, else llama.cpp's defaults. `source` names the file, for error messages.
 */
export function vocabFromTokenizerJson(
  json: object,
  config: HfTokenizerConfig,
  source = "tokenizer.json",
  opts: VocabFromTokenizerJsonOptions = {},
): VocabSpec {
  const tj = json as HfTokenizerJson;
  const model = tj.model;
  if (model?.type !== "BPE" || typeof model.vocab !== "object" || model.vocab === null) {
    throw new InputError(
      `${source}: unsupported tokenizer model ${showFileValue(model?.type)} (supported: BPE)`,
    );
  }
  const sentencePiece = model.byte_fallback === true;
  const pre = sentencePiece ? "default" : preNameOf(tj, source);
  const limit = opts.vocabSize ?? Number.POSITIVE_INFINITY;

  const tokens: string[] = [];
  for (const [token, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || id < 0)
      throw new InputError(`${source}: token ${quoteFileString(token)} has invalid id ${showFileValue(id)}`);
    tokens[id] = token;
  }
  const addedTypes = new Map<number, number>();
  const lstripIds = new Set<number>();
  const rstripIds = new Set<number>();
  for (const t of tj.added_tokens ?? []) {
    if (t.id >= limit && sentencePiece) continue;
    const control = t.special === true || looksSpecial(t.content);
    tokens[t.id] = control ? t.content : t.content.replaceAll(SPACE_MARK, " ");
    addedTypes.set(t.id, control ? TokenType.control : TokenType.userDefined);
    if (t.lstrip === true) lstripIds.add(t.id);
    if (t.rstrip === true) rstripIds.add(t.id);
  }
  if (tokens.length > limit) {
    throw new InputError(
      `${source}: the tokenizer has ids up to ${tokens.length - 1}, more than the model's vocabulary of ${limit} tokens`,
    );
  }
  const n = Math.max(tokens.length, opts.vocabSize ?? 0);
  const unused = new Set<number>();
  for (let id = 0; id < n; id++) {
    if (tokens[id] !== undefined) continue;
    tokens[id] = `[PAD${id}]`;
    unused.add(id);
  }

  const unkId = sentencePiece && model.unk_token ? tokens.indexOf(model.unk_token) : -1;
  const tokenTypes = tokens.map((token, id) => {
    if (unused.has(id)) return TokenType.unused;
    if (id === unkId) return TokenType.unknown;
    const added = addedTypes.get(id);
    if (added !== undefined) return added;
    return sentencePiece && BYTE_PIECE.test(token) ? TokenType.byte : TokenType.normal;
  });
  const special = specialTokens(tj, config, (text) => {
    const t = (tj.added_tokens ?? []).find((a) => a.content === text && a.id < limit);
    return t?.id;
  });
  const common = {
    tokens,
    tokenTypes,
    pre,
    bosId: special.bosId,
    eosId: special.eosId,
    unkId: special.unkId ?? (unkId < 0 ? undefined : unkId),
    padId: special.padId,
    addBos: special.addBos ?? (sentencePiece || preTokenizerOf(pre)?.addBosByDefault === true),
    addEos: special.addEos ?? false,
    ...(rstripIds.size > 0 ? { rstripIds: [...rstripIds].sort((a, b) => a - b) } : {}),
    ...(lstripIds.size > 0 ? { lstripIds: [...lstripIds].sort((a, b) => a - b) } : {}),
  };

  const merges = (model.merges ?? []).map((m) =>
    typeof m === "string" ? m.split(" ") : m.map((part) => part.replaceAll(" ", "\u0120")),
  );
  if (sentencePiece) {
    const scores = tokens.map(() => NO_MERGE_SCORE);
    const ids = new Map(tokens.map((t, id) => [t, id]));
    merges.forEach(([left, right], rank) => {
      const id = ids.get(left + right);
      if (id !== undefined && scores[id] === NO_MERGE_SCORE) scores[id] = -rank;
    });
    return { model: "llama", ...common, scores, addSpacePrefix: prependsSpaceMark(tj) };
  }
  return { model: "gpt2", ...common, merges: merges.map(([l, r]) => `${l} ${r}`) };
}

/** The GGUF pre name of a byte-level tokenizer.json; one vellum does not know is an error. */
function preNameOf(tj: HfTokenizerJson, source: string): string {
  if (!mentionsType(tj.pre_tokenizer, "ByteLevel") && !mentionsType(tj.decoder, "ByteLevel")) {
    throw new InputError(
      `${source}: BPE tokenizer is neither SentencePiece-style (byte_fallback) nor byte-level`,
    );
  }
  const pre = preNameOfHfPreTokenizer(tj.pre_tokenizer);
  if (pre === undefined) {
    throw new InputError(
      `${source}: pre-tokenizer is not one vellum knows (GPT-2, Llama 3, Qwen2, GPT-4o, SmolLM)`,
    );
  }
  return pre;
}

interface SpecialTokens {
  bosId?: number;
  eosId?: number;
  unkId?: number;
  padId?: number;
  addBos?: boolean;
  addEos?: boolean;
}

/**
 * BOS/EOS/UNK/PAD and whether BOS/EOS are added, as the converter's gguf.SpecialVocab reads them: the
 * tokens tokenizer_config.json names (BOS/EOS falling back to the template's first and last special
 * token), looked up among the added tokens; add_bos/add_eos from whether the post-processor's template
 * starts with BOS / ends with EOS, overridden by tokenizer_config.json's add_bos_token / add_eos_token.
 */
function specialTokens(
  tj: HfTokenizerJson,
  config: HfTokenizerConfig,
  addedId: (text: string) => number | undefined,
): SpecialTokens {
  const template = postProcessorTokens(tj.post_processor);
  const bos = configTokenText(config.bos_token) ?? template.first;
  const eos = configTokenText(config.eos_token) ?? template.last;
  const idOf = (text: string | undefined) => (text === undefined ? undefined : addedId(text));
  const fromTemplate = (token: string | undefined, expected: string | undefined) =>
    token === undefined ? undefined : token === expected;
  return {
    bosId: idOf(bos),
    eosId: idOf(eos),
    unkId: idOf(configTokenText(config.unk_token)),
    padId: idOf(configTokenText(config.pad_token)),
    addBos: config.add_bos_token ?? fromTemplate(template.first, bos),
    addEos: config.add_eos_token ?? fromTemplate(template.last, eos),
  };
}

/** Whether a component tree (Sequence nesting) contains a component of `type`. */
function mentionsType(component: unknown, type: string): boolean {
  if (component === null || typeof component !== "object") return false;
  const c = component as {
    type?: string;
    pretokenizers?: unknown[];
    decoders?: unknown[];
    normalizers?: unknown[];
  };
  if (c.type === type) return true;
  return [...(c.pretokenizers ?? []), ...(c.decoders ?? []), ...(c.normalizers ?? [])].some((x) =>
    mentionsType(x, type),
  );
}

/** Dummy prefix: a Prepend ▁ normalizer (legacy) or a Metaspace pre-tokenizer that prepends. */
export function prependsSpaceMark(tj: Pick<HfTokenizerJson, "normalizer" | "pre_tokenizer">): boolean {
  const hasPrepend = (n: unknown): boolean => {
    if (n === null || typeof n !== "object") return false;
    const c = n as { type?: string; prepend?: string; normalizers?: unknown[] };
    return (c.type === "Prepend" && c.prepend === SPACE_MARK) || (c.normalizers ?? []).some(hasPrepend);
  };
  const meta = tj.pre_tokenizer as {
    type?: string;
    prepend_scheme?: string;
    add_prefix_space?: boolean;
  } | null;
  const metaspacePrepends =
    meta?.type === "Metaspace" &&
    (meta.prepend_scheme ? meta.prepend_scheme !== "never" : meta.add_prefix_space !== false);
  return hasPrepend(tj.normalizer) || metaspacePrepends;
}

/**
 * The special tokens a TemplateProcessing post-processor (alone or in a Sequence) puts first and last around
 * a single text, when it puts anything around it.
 */
function postProcessorTokens(post: unknown): { first?: string; last?: string } {
  const p = post as { type?: string; single?: TemplateItem[]; processors?: unknown[] } | null;
  for (const processor of p?.processors ?? [p]) {
    const single = (processor as { type?: string; single?: TemplateItem[] } | null)?.single;
    if ((processor as { type?: string } | null)?.type !== "TemplateProcessing" || !Array.isArray(single))
      continue;
    if (single.length < 2) return {};
    const idOfItem = (item: TemplateItem | undefined) =>
      item !== undefined && "SpecialToken" in item ? item.SpecialToken.id : undefined;
    return { first: idOfItem(single[0]), last: idOfItem(single[single.length - 1]) };
  }
  return {};
}

import { InputError, quoteFileString, showFileValue } from "../errors.js";
import { preNameOfHfPattern, preTokenizerPattern } from "./pretokenize-patterns.js";
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
  added_tokens?: { id: number; content: string; special?: boolean }[];
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

/** Added tokens: control and unknown tokens as special, user-defined ones as plain added tokens. */
function addedTokens(spec: VocabSpec, types: readonly number[]): object[] {
  const added: object[] = [];
  types.forEach((type, id) => {
    const special = type === TokenType.control || type === TokenType.unknown;
    if (!special && type !== TokenType.userDefined) return;
    const content = spec.tokens[id];
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
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
  const pattern = preTokenizerPattern(spec.pre);
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false };
  const split = { type: "Split", pattern: { Regex: pattern.hf }, behavior: "Isolated", invert: false };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens(spec, types),
    normalizer: null,
    pre_tokenizer:
      pattern.name === "gpt2"
        ? { ...byteLevel, use_regex: true }
        : { type: "Sequence", pretokenizers: [split, byteLevel] },
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
      ignore_merges: pattern.ignoreMerges,
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
 * The VocabSpec of an HF tokenizer (for HF → GGUF conversion). A BPE model with byte_fallback (the Llama /
 * Mistral SentencePiece family) becomes `llama`, scored by merge order: a piece's score is minus the index
 * of the first merge that produces it, so higher scores merge first as in the original. A BPE model with a
 * ByteLevel pre-tokenizer or decoder becomes `gpt2`. `source` names the file, for error messages.
 */
export function vocabFromTokenizerJson(
  json: object,
  config: HfTokenizerConfig,
  source = "tokenizer.json",
): VocabSpec {
  const tj = json as HfTokenizerJson;
  const model = tj.model;
  if (model?.type !== "BPE" || typeof model.vocab !== "object" || model.vocab === null) {
    throw new InputError(
      `${source}: unsupported tokenizer model ${showFileValue(model?.type)} (supported: BPE)`,
    );
  }
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || id < 0)
      throw new InputError(`${source}: token ${quoteFileString(token)} has invalid id ${showFileValue(id)}`);
    tokens[id] = token;
  }
  const added = new Map<number, boolean>();
  for (const t of tj.added_tokens ?? []) {
    tokens[t.id] = t.content;
    added.set(t.id, t.special ?? false);
  }
  for (let id = 0; id < tokens.length; id++) {
    if (tokens[id] === undefined) throw new InputError(`${source}: no token has id ${id}`);
  }
  const merges = (model.merges ?? []).map((m) => (typeof m === "string" ? m.split(" ") : m));
  const idOf = (value: HfTokenizerConfig["bos_token"]) => {
    const text = configTokenText(value);
    const id = text === undefined ? -1 : tokens.indexOf(text);
    return id < 0 ? undefined : id;
  };
  const bosId = idOf(config.bos_token);
  const eosId = idOf(config.eos_token);
  const postTokens = postProcessorTokens(tj.post_processor);
  const unkId = model.unk_token ? tokens.indexOf(model.unk_token) : -1;
  const tokenTypes = tokens.map((token, id) => {
    if (id === unkId) return TokenType.unknown;
    if (added.has(id)) return added.get(id) ? TokenType.control : TokenType.userDefined;
    return model.byte_fallback && BYTE_PIECE.test(token) ? TokenType.byte : TokenType.normal;
  });
  const common = {
    tokens,
    tokenTypes,
    bosId,
    eosId,
    unkId: unkId < 0 ? undefined : unkId,
    addBos: config.add_bos_token ?? (bosId !== undefined && postTokens.first === tokens[bosId]),
    addEos: config.add_eos_token ?? (eosId !== undefined && postTokens.last === tokens[eosId]),
  };

  if (model.byte_fallback) {
    const scores = tokens.map(() => NO_MERGE_SCORE);
    const ids = new Map(tokens.map((t, id) => [t, id]));
    merges.forEach(([left, right], rank) => {
      const id = ids.get(left + right);
      if (id !== undefined && scores[id] === NO_MERGE_SCORE) scores[id] = -rank;
    });
    return { model: "llama", ...common, scores, addSpacePrefix: prependsSpaceMark(tj) };
  }
  if (mentionsType(tj.pre_tokenizer, "ByteLevel") || mentionsType(tj.decoder, "ByteLevel")) {
    const splitRegex = findSplitRegex(tj.pre_tokenizer);
    const pre = splitRegex === undefined ? "gpt2" : preNameOfHfPattern(splitRegex);
    if (pre === undefined) {
      throw new InputError(`${source}: pre-tokenizer regex is not one vellum knows (GPT-2, Llama 3, Qwen2)`);
    }
    return { model: "gpt2", ...common, merges: merges.map(([l, r]) => `${l} ${r}`), pre };
  }
  throw new InputError(
    `${source}: BPE tokenizer is neither SentencePiece-style (byte_fallback) nor byte-level`,
  );
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

function findSplitRegex(component: unknown): string | undefined {
  if (component === null || typeof component !== "object") return undefined;
  const c = component as { type?: string; pattern?: { Regex?: string }; pretokenizers?: unknown[] };
  if (c.type === "Split") return c.pattern?.Regex;
  for (const x of c.pretokenizers ?? []) {
    const found = findSplitRegex(x);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Dummy prefix: a Prepend ▁ normalizer (legacy) or a Metaspace pre-tokenizer that prepends. */
function prependsSpaceMark(tj: HfTokenizerJson): boolean {
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

/** The special tokens a TemplateProcessing post-processor puts first and last around a single text. */
function postProcessorTokens(post: unknown): { first?: string; last?: string } {
  const single = (post as { type?: string; single?: TemplateItem[] } | null)?.single;
  if (!Array.isArray(single) || single.length === 0) return {};
  const idOfItem = (item: TemplateItem | undefined) =>
    item !== undefined && "SpecialToken" in item ? item.SpecialToken.id : undefined;
  return { first: idOfItem(single[0]), last: idOfItem(single[single.length - 1]) };
}

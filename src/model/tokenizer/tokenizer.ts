/**
 * What the engine needs from any tokenizer (SentencePiece-BPE, byte-level BPE, or HF tokenizer.json).
 */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** Ids that end generation (EOS plus model-specific ones such as <|eot_id|> / <|im_end|>). */
  readonly stopIds: readonly number[];
  /** What this tokenizer is built from, so that another thread can build the same one. */
  readonly recipe: TokenizerRecipe;
  /**
   * Text to ids. With `addSpecial` (default true) BOS/EOS are added as the model's own settings say
   * (add_bos / add_eos). Special-token text (e.g. "<|im_start|>") maps to its id where special tokens are
   * parsed: in a string unless `parseSpecial` is false, in a list of parts only in the parts that say so.
   * Parts are tokenized as one text: plain text on both sides of a part boundary is joined before BPE.
   */
  encode(text: string | readonly TextPart[], opts?: EncodeOptions): number[];
  /** Ids to text; control tokens (BOS, EOS, …) are dropped unless `skipSpecial` is false. */
  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string;
  /** The vocabulary entry of one id as stored (for logprobs display and debugging). */
  idToToken(id: number): string;
  /**
   * The first special-token text in `text` that parsing special tokens would turn into a control token
   * (the text `parseSpecial: false` keeps as text), or undefined when there is none.
   */
  findSpecialText(text: string): string | undefined;
}

export interface EncodeOptions {
  /** Add BOS/EOS as the model's settings say; default true. */
  addSpecial?: boolean;
  /**
   * For a string: special-token text becomes its control token (default true, like vLLM and llama.cpp's
   * parse_special); false keeps it as text. User-defined tokens (added words) match either way, as in
   * llama.cpp and in HF with split_special_tokens.
   */
  parseSpecial?: boolean;
}

/**
 * A stretch of prompt text. Special-token text in it becomes a control token only when `parseSpecial` is
 * true: a chat prompt sets it on the template's own markup and never on a user's message content.
 */
export interface TextPart {
  text: string;
  parseSpecial: boolean;
}

/** One `encode` call as data. */
export interface EncodeRequest extends EncodeOptions {
  text: string | readonly TextPart[];
}

/** The parts of tokenizer_config.json read by vellum; bos/eos may be a string or an AddedToken object. */
export interface HfTokenizerConfig {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  chat_template?: string | { name: string; template: string }[];
  clean_up_tokenization_spaces?: boolean;
}

/** Data a tokenizer can be built again from (structured-cloneable, e.g. to a worker thread). */
export type TokenizerRecipe =
  | { kind: "vocab"; spec: VocabSpec; source: string }
  | { kind: "hf"; json: object; config: HfTokenizerConfig; source: string; extraStopIds: number[] };

/** The parts of an `encode` input: a string is one part, parsed for special tokens as `parseSpecial` says. */
export function textParts(text: string | readonly TextPart[], parseSpecial = true): readonly TextPart[] {
  return typeof text === "string" ? [{ text, parseSpecial }] : text;
}

/**
 * A tokenizer as data: what GGUF `tokenizer.ggml.*` keys hold, and what llama2.c's tokenizer.bin
 * converts to. Loaders build one of these; `createTokenizer` turns it into a Tokenizer, and the GGUF
 * writer stores it.
 */
export interface VocabSpec {
  /** GGUF `tokenizer.ggml.model`: `llama` = SentencePiece-BPE with scores, `gpt2` = byte-level BPE with merges. */
  model: "llama" | "gpt2";
  /** Pieces; SentencePiece pieces use U+2581 (▁) for a space, byte tokens are spelled <0xNN>. */
  tokens: string[];
  /** Merge priority per token (SentencePiece); higher merges first. */
  scores?: number[];
  /** GGUF token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  tokenTypes?: number[];
  /** Byte-level BPE merges, "a b" per line, in priority order. */
  merges?: string[];
  /** GGUF `tokenizer.ggml.pre` (pre-tokenizer regex family for gpt2 models, e.g. "llama-bpe", "qwen2"). */
  pre?: string;
  bosId?: number;
  eosId?: number;
  unkId?: number;
  padId?: number;
  /** Extra end-of-generation ids (GGUF `tokenizer.ggml.eot_token_id` and the like). */
  eotIds?: number[];
  addBos: boolean;
  addEos: boolean;
  /** SentencePiece "dummy prefix": a space is prepended to the text before encoding (default true for llama). */
  addSpacePrefix?: boolean;
  /**
   * Special tokens that swallow the whitespace after them (`rstripIds`) or before them (`lstripIds`) where
   * they are matched: llama.cpp's RSTRIP/LSTRIP token attributes, tokenizer.json's added-token rstrip/lstrip.
   * GGUF has no key for them: llama.cpp decides them by the model's name (see strip-by-name.ts).
   */
  rstripIds?: number[];
  lstripIds?: number[];
}

export const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

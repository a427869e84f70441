/**
 * What the engine needs from any tokenizer (SentencePiece-BPE, byte-level BPE, or HF tokenizer.json).
 */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** Ids that end generation (EOS plus model-specific ones such as <|eot_id|> / <|im_end|>). */
  readonly stopIds: readonly number[];
  /**
   * Text to ids. With `addSpecial` (default true) BOS/EOS are added as the model's own settings say
   * (add_bos / add_eos); special-token text in `text` (e.g. "<|im_start|>") maps to its id.
   */
  encode(text: string, opts?: { addSpecial?: boolean }): number[];
  /** Ids to text; control tokens (BOS, EOS, …) are dropped unless `skipSpecial` is false. */
  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string;
  /** The vocabulary entry of one id as stored (for logprobs display and debugging). */
  idToToken(id: number): string;
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
}

export const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

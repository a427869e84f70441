import { prependsSpaceMark } from "../../model/tokenizer/hf-convert.js";
import { type Tokenizer, TokenType } from "../../model/tokenizer/tokenizer.js";

/**
 * The served model's vocabulary as XGrammar's TokenizerInfo takes it: every token's stored text, and how to
 * turn that text into the bytes the token stands for.
 */
export interface GrammarVocabulary {
  /**
   * The stored text of each token, by id. Control tokens (BOS, chat markup, unknown and unused entries) are
   * "": XGrammar never allows an empty token in text, so none of them can be sampled inside a grammar, where
   * their text would otherwise count as literal characters ("<|eot_id|>" inside a JSON string).
   */
  encodedVocab: string[];
  /**
   * XGrammar's decoding of a stored token: `byte_fallback` (SentencePiece: ▁ is a space, <0xNN> a byte),
   * `byte_level` (GPT-2's byte-to-unicode alphabet), `raw` (the text as stored).
   */
  vocabType: "byte_fallback" | "byte_level" | "raw";
  /** The tokenizer puts a space before the text (SentencePiece's dummy prefix). */
  addPrefixSpace: boolean;
  /** Rows of the logits: may exceed the tokenizer's vocabulary (padding ids, never allowed). */
  vocabSize: number;
  /** The ids that end generation: the grammar allows them where the text may end. */
  stopIds: number[];
}

/** GGUF token types whose text is not text: they never appear inside a grammar's output. */
const nonTextTypes: ReadonlySet<number> = new Set([TokenType.control, TokenType.unknown, TokenType.unused]);

/**
 * The vocabulary of a vellum Tokenizer for XGrammar, decided from what the tokenizer was built from: a GGUF
 * `llama` (SentencePiece) vocabulary is byte_fallback, a `gpt2` one byte_level, and a tokenizer.json goes by
 * its decoder as XGrammar's own Hugging Face loader decides it (ByteLevel, ByteFallback, else raw).
 */
export function grammarVocabulary(tokenizer: Tokenizer, logitsVocabSize: number): GrammarVocabulary {
  const recipe = tokenizer.recipe;
  const stopIds = [...tokenizer.stopIds];
  if (recipe.kind === "vocab") {
    const { spec } = recipe;
    const types = spec.tokenTypes;
    return {
      encodedVocab: spec.tokens.map((t, id) => (types && nonTextTypes.has(types[id]) ? "" : t)),
      vocabType: spec.model === "llama" ? "byte_fallback" : "byte_level",
      addPrefixSpace: spec.model === "llama" && (spec.addSpacePrefix ?? true),
      vocabSize: logitsVocabSize,
      stopIds,
    };
  }
  const json = recipe.json as HfTokenizerJson;
  const control = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
  const encodedVocab: string[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    encodedVocab.push(control.has(id) ? "" : entryOf(tokenizer, id));
  }
  return {
    encodedVocab,
    vocabType: hfVocabType(json.decoder),
    addPrefixSpace: prependsSpaceMark(json),
    vocabSize: logitsVocabSize,
    stopIds,
  };
}

/** The parts of tokenizer.json read here. */
interface HfTokenizerJson {
  added_tokens?: { id: number; special?: boolean }[];
  decoder?: HfComponent | null;
  normalizer?: unknown;
  pre_tokenizer?: unknown;
}

interface HfComponent {
  type?: string;
  decoders?: HfComponent[];
}

/** An id the tokenizer.json has no entry for (a hole in the ids) is "": never allowed. */
function entryOf(tokenizer: Tokenizer, id: number): string {
  try {
    return tokenizer.idToToken(id);
  } catch {
    return "";
  }
}

function hfVocabType(decoder: HfComponent | null | undefined): GrammarVocabulary["vocabType"] {
  const decoders = decoder?.type === "Sequence" ? (decoder.decoders ?? []) : decoder ? [decoder] : [];
  for (const d of decoders) {
    if (d.type === "ByteLevel") return "byte_level";
    if (d.type === "ByteFallback") return "byte_fallback";
  }
  return "raw";
}

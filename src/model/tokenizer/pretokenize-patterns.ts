/**
 * Pre-tokenizer regexes of byte-level BPE models, chosen by GGUF `tokenizer.ggml.pre`. Text is split into
 * words by the pattern before BPE runs inside each word (llama.cpp's llm_tokenizer_bpe, HF's Split +
 * ByteLevel). `hf` is the pattern as HF tokenizer.json writes it (Oniguruma syntax); `js` is the same
 * pattern for JavaScript (which lacks the `(?i:…)` group, so the contractions spell out both cases).
 */
export interface PreTokenizerPattern {
  /** The canonical GGUF pre name. */
  name: string;
  js: RegExp;
  hf: string;
  /** A word that is itself a vocabulary token is taken whole, without merges (HF `ignore_merges`, Llama 3). */
  ignoreMerges: boolean;
}

const contractionsAnyCase = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";

/** GPT-2's pattern; also the default for pre names this table does not know. */
const gpt2: PreTokenizerPattern = {
  name: "gpt2",
  js: /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu,
  hf: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  ignoreMerges: false,
};

/** Llama 3: numbers split into groups of up to three digits. */
const llama3: PreTokenizerPattern = {
  name: "llama-bpe",
  js: new RegExp(
    `(?:${contractionsAnyCase})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
    "gu",
  ),
  hf: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ignoreMerges: true,
};

/** Qwen2: like Llama 3 but one digit per word. */
const qwen2: PreTokenizerPattern = {
  name: "qwen2",
  js: new RegExp(
    `(?:${contractionsAnyCase})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
    "gu",
  ),
  hf: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ignoreMerges: false,
};

const byPreName: ReadonlyMap<string, PreTokenizerPattern> = new Map([
  ["llama-bpe", llama3],
  ["llama3", llama3],
  ["smaug-bpe", llama3],
  ["qwen2", qwen2],
  ["gpt2", gpt2],
  ["gpt-2", gpt2],
  ["default", gpt2],
]);

/** The pattern for a GGUF pre name; unknown or missing names get GPT-2's pattern (llama.cpp's default). */
export function preTokenizerPattern(pre: string | undefined): PreTokenizerPattern {
  return byPreName.get(pre ?? "default") ?? gpt2;
}

/** The GGUF pre name of an HF Split regex, if it is one of the patterns above. */
export function preNameOfHfPattern(hf: string): string | undefined {
  return [llama3, qwen2, gpt2].find((p) => p.hf === hf)?.name;
}

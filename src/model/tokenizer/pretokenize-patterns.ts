/**
 * Pre-tokenizers of byte-level BPE models, chosen by GGUF `tokenizer.ggml.pre`, as llama.cpp's
 * llm_tokenizer_bpe and unicode_regex_split do it: a list of regexes, each splitting every piece the
 * previous one left into its matches and the text between them; BPE then runs inside each piece.
 *
 * The regexes are llama.cpp's, written for JavaScript: `\s` is spelled out as llama.cpp's whitespace set
 * (JavaScript's `\s` also matches U+FEFF and misses U+0085), and `(?i:…)` contractions list both cases.
 * GPT-4o's upper/lower-case classes are llama.cpp's: a letter not in a–z counts as upper case and a letter
 * not in A–Z as lower case (std::regex has no \p{Lu}), so "éÉ" is one word where HF splits it.
 */
export interface PreTokenizer {
  /** The canonical GGUF pre name. */
  name: string;
  /** Applied in turn, each to every piece the previous ones produced. */
  splits: readonly RegExp[];
  /** A word that is itself a vocabulary token is taken whole, without merges (HF `ignore_merges`, Llama 3). */
  ignoreMerges: boolean;
  /** llama.cpp adds BOS for this pre-type when the file has no `tokenizer.ggml.add_bos_token`. */
  addBosByDefault: boolean;
  /**
   * The HF tokenizer.json `pre_tokenizer` that splits text the same way (ByteLevel after the split), or
   * undefined when tokenizer.json has none.
   */
  hf: object | undefined;
}

/** llama.cpp's whitespace code points (unicode_set_whitespace), as the inside of a character class. */
const ws = "\\t-\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
const contractions = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";
/** The end of the GPT-2, Llama 3 and Qwen2 patterns: whitespace, leaving one space for the next word. */
const spaces = `[${ws}]+(?![^${ws}])|[${ws}]+`;

const regex = (source: string) => new RegExp(source, "gu");
const gpt2Regex = regex(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${ws}\\p{L}\\p{N}]+|${spaces}`);
const llama3Regex = regex(
  `${contractions}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${ws}\\p{L}\\p{N}]+[\\r\\n]*|[${ws}]*[\\r\\n]+|${spaces}`,
);
const qwen2Regex = regex(
  `${contractions}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^${ws}\\p{L}\\p{N}]+[\\r\\n]*|[${ws}]*[\\r\\n]+|${spaces}`,
);
const upper = "(?:(?=\\p{L})[^a-z])";
const lower = "(?:(?=\\p{L})[^A-Z])";
const gpt4oRegex = regex(
  `[^\\r\\n\\p{L}\\p{N}]?${upper}*${lower}+(?:${contractions})?|[^\\r\\n\\p{L}\\p{N}]?${upper}+${lower}*(?:${contractions})?|\\p{N}{1,3}| ?[^${ws}\\p{L}\\p{N}]+[\\r\\n/]*|[${ws}]*[\\r\\n]+|${spaces}`,
);

/** HF's spelling of the patterns (Oniguruma syntax), as tokenizer.json files write them. */
const hfGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const hfLlama3 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const hfQwen2 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const hfGpt4o =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false };
const splitThen = (pattern: string) => ({
  type: "Sequence",
  pretokenizers: [
    { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
    byteLevel,
  ],
});

const plain = { ignoreMerges: false, addBosByDefault: false };
const gpt2: PreTokenizer = {
  name: "gpt-2",
  splits: [gpt2Regex],
  ...plain,
  hf: { ...byteLevel, use_regex: true },
};
const llama3: PreTokenizer = {
  name: "llama-bpe",
  splits: [llama3Regex],
  ignoreMerges: true,
  addBosByDefault: true,
  hf: splitThen(hfLlama3),
};
/** dbrx and smaug-bpe: Llama 3's regex without its ignore_merges and BOS default. */
const smaug: PreTokenizer = { name: "smaug-bpe", splits: [llama3Regex], ...plain, hf: undefined };
const qwen2: PreTokenizer = { name: "qwen2", splits: [qwen2Regex], ...plain, hf: splitThen(hfQwen2) };
const gpt4o: PreTokenizer = { name: "gpt-4o", splits: [gpt4oRegex], ...plain, hf: splitThen(hfGpt4o) };
/** SmolLM and StarCoder: every digit alone, then GPT-2's pattern. */
const smollm: PreTokenizer = {
  name: "smollm",
  splits: [/\p{N}/gu, gpt2Regex],
  ...plain,
  hf: {
    type: "Sequence",
    pretokenizers: [
      { type: "Digits", individual_digits: true },
      { ...byteLevel, use_regex: true },
    ],
  },
};
/** llama.cpp's fallback for a byte-level vocabulary without a pre name. */
const llamaCppDefault: PreTokenizer = {
  name: "default",
  splits: [/[\p{P}$+<=>^~|]+/gu, gpt2Regex, /\p{N}+/gu, /[0-9][0-9][0-9]/gu],
  ...plain,
  hf: undefined,
};

/** llama.cpp's pre names (llama_vocab::impl::load) whose pre-tokenizer is one of the above. */
const byPreName: ReadonlyMap<string, PreTokenizer> = new Map([
  ...["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"].map(
    (name) => [name, llama3] as const,
  ),
  ...["dbrx", "smaug-bpe"].map((name) => [name, smaug] as const),
  ...["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "megrez", "hunyuan"].map(
    (name) => [name, qwen2] as const,
  ),
  ...["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"].map((name) => [name, gpt4o] as const),
  ...["gpt-2", "phi-2", "gigachat", "a.x-4.0", "mellum", "mpt", "olmo", "jais", "trillion", "exaone4"].map(
    (name) => [name, gpt2] as const,
  ),
  ...["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2"].map(
    (name) => [name, smollm] as const,
  ),
  ["default", llamaCppDefault],
]);

/** The supported pre names, for messages. */
export const supportedPreNames: readonly string[] = [...byPreName.keys()];

/**
 * The pre-tokenizer of a GGUF pre name; a missing name is llama.cpp's "default". Undefined for a name
 * vellum does not implement, which the caller must refuse.
 */
export function preTokenizerOf(pre: string | undefined): PreTokenizer | undefined {
  return byPreName.get(pre ?? "default");
}

/** Splits text into the pieces BPE runs on. */
export function preTokenize(text: string, pre: PreTokenizer): string[] {
  let pieces = [text];
  for (const split of pre.splits) {
    const next: string[] = [];
    for (const piece of pieces) {
      let end = 0;
      for (const match of piece.matchAll(split)) {
        if (match.index > end) next.push(piece.slice(end, match.index));
        next.push(match[0]);
        end = match.index + match[0].length;
      }
      if (end < piece.length) next.push(piece.slice(end));
    }
    pieces = next;
  }
  return pieces;
}

/** The GGUF pre name of an HF pre_tokenizer, when it is one of the above (how llama.cpp's converter names it). */
export function preNameOfHfPreTokenizer(preTokenizer: unknown): string | undefined {
  const json = JSON.stringify(preTokenizer);
  const byRegex = new Map([
    [hfLlama3, llama3],
    [hfQwen2, qwen2],
    [hfGpt4o, gpt4o],
    [hfGpt2, gpt2],
  ]);
  const regexOf = findSplitRegex(preTokenizer);
  if (regexOf !== undefined) return byRegex.get(regexOf)?.name;
  if (json.includes('"Digits"') && json.includes('"individual_digits":true')) return smollm.name;
  return json.includes('"ByteLevel"') ? gpt2.name : undefined;
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

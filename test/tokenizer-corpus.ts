import fc from "fast-check";

/**
 * Text to compare tokenizers on: hand-picked hard cases, then strings generated with a fixed seed from
 * fragments of English, code, CJK, Arabic, Cyrillic, Indic and Khmer script, emoji, digits, whitespace runs,
 * punctuation and special-token text, and runs of random characters from long-assigned Unicode blocks.
 */

/** The cases that tell pre-tokenizers apart (llama.cpp's converter hashes the first one to name them). */
export const hardCases = [
  "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
  "",
  " ",
  "  ",
  "   ",
  "\t",
  "\n",
  "\n\n",
  "\n\n\n",
  "\t\n",
  " Hello",
  "  Hello",
  "   Hello\n    Hello",
  "Hello world",
  "Hello\n\nWorld",
  "I've been 'told he's there",
  "DON'T CAN'T WON'T it'S",
  "1234567890 3.14159 1,000,000 2024-06-11",
  "我想在apple工作1314151天～",
  "مرحبا بالعالم ١٢٣",
  "Привет, мир! Straße naïve café CAFÉ",
  "éÉ ÉÉé ÀbcDÉf",
  "e\u0301 a\u0308 n\u0303",
  "x\u0085y\ufeffz\u00a0w\u3000v\u2003u\u200bt",
  "function f(x) {\n    return x + 1;\n}\n",
  "def f():\n\tif x:\n\t\treturn [i for i in range(10)]\n",
  '<div class="a">&nbsp;</div>',
  "a  b   c    d\t\te",
  "👍🏽 🇫🇷 ❤️ 👨‍👩‍👧‍👦",
  "ａｂｃ１２３",
  "½ ² ³ ⅓ Ⅻ",
  "<|begin_of_text|>hi<|eot_id|>",
  "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
  "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
  "<s>[INST] hi [/INST] ok</s>",
  "<|user|>\nhi<|end|>\n<|assistant|>\n",
  "<|endoftext|><|endoftext|>",
  "<bos><eos><pad><unk><mask>",
  "<unused0><table><tr><td>x</td></tr></table>",
  "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
  "< |im_start| > <|im_start <|im_start|",
];

const pools: string[][] = [
  [..."the The quick brown fox jumps over lazy dog Hello world".split(" ").flatMap((w) => [w, ` ${w}`])],
  ["I'm", " you're", " it's", " we've", " they'll", " he'd", "DON'T", " CAN'T", "'S", "'ll", "’s", "'", "''"],
  ["function", " f(x) {", "return x + 1;", "}", " => ", "===", "for i in range(10):", 'print("hi")'],
  [
    "#include <stdio.h>",
    "x += 1",
    "arr[0]",
    "foo_bar",
    "camelCase",
    "0x1F",
    "/* c */",
    "// note",
    "SELECT * FROM t;",
  ],
  ["我想在", "工作", "天", "日本語", "テキスト", "ひらがな", "한국어", "中文", "～", "，", "。", "「", "」"],
  ["مرحبا", " بالعالم", "السلام", " عليكم", "١٢٣", "שלום", "हिन्दी", "ภาษาไทย", "កាន់តែ", "Ωμέγα"],
  ["Привет", " мир", "Straße", "naïve", "café", "CAFÉ", "ÉÉé", "éÉ", "e\u0301", "Ångström", "İstanbul"],
  ["🚀", "😶\u200d🌫️", "🦙", "✅", "👍🏽", "🇫🇷", "❤️", "😁", "🤖🤖"],
  ["1", "12", "123", "1234", "12345", "3.14", "1,000", "2024-06-11", "٣", "½", "²", "0"],
  [
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    "\r\n",
    " \n",
    "\t\t",
    "    ",
    "\u00a0",
    "\u3000",
    "\u2003",
    "\u0085",
    "\ufeff",
  ],
  [
    ".",
    ",",
    "!",
    "?",
    "...",
    "—",
    "-",
    "(",
    ")",
    '"',
    "«",
    "»",
    "¿",
    "@",
    "#",
    "$",
    "%",
    "&",
    "*",
    "/",
    "\\",
  ],
  [
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|im_start|>",
    "<|im_end|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<s>",
    "</s>",
    "<bos>",
    "<eos>",
    "<unk>",
    "<|endoftext|>",
    "<|end|>",
    "<|user|>",
    "<think>",
    "</think>",
    "<mask>",
    "<unused3>",
    "<table>",
    "<|fim_pad|>",
    "[INST]",
  ],
];

/** Code points of long-assigned blocks (Latin, Greek, Cyrillic, Arabic, CJK, kana, Hangul, emoji). */
const stableBlocks: [number, number][] = [
  [0x20, 0x7e],
  [0xa0, 0x24f],
  [0x370, 0x3ff],
  [0x400, 0x4ff],
  [0x600, 0x6ff],
  [0x3040, 0x30ff],
  [0x4e00, 0x9fff],
  [0xac00, 0xd7a3],
  [0x1f300, 0x1f64f],
];
const stableChar = fc
  .oneof(...stableBlocks.map(([lo, hi]) => fc.integer({ min: lo, max: hi })))
  .map((cp) => String.fromCodePoint(cp));

const fragment = fc.oneof(
  ...pools.map((pool) => fc.constantFrom(...pool)),
  fc.array(stableChar, { minLength: 1, maxLength: 6 }).map((cs) => cs.join("")),
);
const generated = fc.array(fragment, { minLength: 1, maxLength: 16 }).map((parts) => parts.join(""));

/** The corpus: the hard cases and `size` generated strings (the same ones on every run). */
export function tokenizerCorpus(size = 2000): string[] {
  return [...hardCases, ...fc.sample(generated, { seed: 16, numRuns: size })];
}

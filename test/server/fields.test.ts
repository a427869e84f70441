import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

// vLLM's smaller request fields on both endpoints, on the demo model (SentencePiece: <s> = 1, </s> = 2).
const model = loadModel(bundledModelPath);
const { tokenizer } = model;
const prompt = "In the beginning";
const messages = [{ role: "user" as const, content: prompt }];
const pieceId = (piece: string) =>
  tokenizer.encode(piece, { addSpecial: false, parseSpecial: false }).at(-1) as number;

describe("vLLM's extra sampling and output fields through the server (the bundled demo model)", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "demo" });
  });
  afterAll(() => s.close(1000));

  /**
   * One completion and one chat choice (greedy, with their 2 best log-probs) with `extra` in the body: the
   * client sends fields it does not know as they are.
   */
  async function bothEndpoints(extra: object, maxTokens: number) {
    const completion = await s.client.completions.create({
      model: "demo",
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      logprobs: 2,
      ...extra,
    });
    const chat = await s.client.chat.completions.create({
      model: "demo",
      messages,
      max_tokens: maxTokens,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
      ...extra,
    });
    return { completion: completion.choices[0], chat: chat.choices[0] };
  }

  test("GET /v1/models/{id} is the list's entry; another id is a 404 in OpenAI's shape", async () => {
    const { created: _, ...listed } = (await s.client.models.list()).data[0];
    const { created, ...retrieved } = await s.client.models.retrieve("demo");
    expect(retrieved).toEqual(listed);
    expect(typeof created).toBe("number");
    for (const path of ["/v1/models/other", "/v1/models/demo/x", "/v1/models/"]) {
      const r = await fetch(`${s.url}${path}`);
      expect(r.status, path).toBe(404);
      expect((await r.json()).error, path).toMatchObject({
        type: "NotFoundError",
        param: "model",
        code: 404,
      });
    }
  });

  test("logit_bias -100 on the greedy token gives the second-best; +100 on a token repeats it", async () => {
    const plain = await bothEndpoints({}, 1);
    const completionTop = plain.completion.logprobs?.top_logprobs?.[0] ?? {};
    const chatTop = plain.chat.logprobs?.content?.[0].top_logprobs ?? [];
    const [completionBest, completionSecond] = Object.keys(completionTop);
    const biased = {
      completion: await bothEndpoints({ logit_bias: { [pieceId(completionBest)]: -100 } }, 1),
      chat: await bothEndpoints({ logit_bias: { [pieceId(chatTop[0].token)]: -100 } }, 1),
    };
    expect(biased.completion.completion.text).toBe(completionSecond);
    expect(biased.chat.chat.message.content).toBe(chatTop[1].token);
    // Log-probs stay those of the raw logits.
    expect(biased.completion.completion.logprobs?.token_logprobs?.[0]).toBeCloseTo(
      completionTop[completionSecond],
      5,
    );
    const lord = pieceId(" LORD");
    const repeated = await bothEndpoints({ logit_bias: { [lord]: 100 } }, 4);
    expect(repeated.completion.text).toBe(" LORD LORD LORD LORD");
    expect(repeated.chat.message.content).toBe(" LORD LORD LORD LORD");
  });

  test("allowed_token_ids: at temperature 1 only those tokens come out", async () => {
    const words = [" the", " LORD", " and"];
    const { completion, chat } = await bothEndpoints(
      { allowed_token_ids: words.map(pieceId), temperature: 1, seed: 7, ignore_eos: true },
      24,
    );
    expect(completion.text).toMatch(/^( the| LORD| and){24}$/);
    expect(chat.message.content).toMatch(/^( the| LORD| and){24}$/);
  });

  test("bad_words: the word's token sequence never comes out; the text is the same up to where it was", async () => {
    const plain = await bothEndpoints({}, 30);
    // A one-token word and a two-token one from each endpoint's greedy text.
    const cases = [
      ["completion", "Egypt", [" Egypt"]],
      ["completion", "the land", [" the", " land"]],
      ["chat", "wicked", [" wicked"]],
      ["chat", "the wicked", [" the", " wicked"]],
    ] as const;
    for (const [endpoint, word, tokens] of cases) {
      const banned = await bothEndpoints({ bad_words: [word] }, 30);
      const [before, after, afterTokens] =
        endpoint === "completion"
          ? [plain.completion.text, banned.completion.text, banned.completion.logprobs?.tokens ?? []]
          : [
              plain.chat.message.content ?? "",
              banned.chat.message.content ?? "",
              banned.chat.logprobs?.content?.map((t) => t.token) ?? [],
            ];
      const cut = before.indexOf(tokens.join(""));
      expect(cut, `"${word}" is in the plain ${endpoint}`).toBeGreaterThan(0);
      expect(after.slice(0, cut)).toBe(before.slice(0, cut));
      expect(after).not.toBe(before);
      const holds = afterTokens.some((_, i) => tokens.every((t, j) => afterTokens[i + j] === t));
      expect(holds, `${word} in ${JSON.stringify(afterTokens)}`).toBe(false);
    }
  });

  test("skip_special_tokens: false keeps control tokens' text; the EOS that ends a completion stays out", async () => {
    const bos = tokenizer.bosId as number;
    const eos = tokenizer.eosId as number;
    const forced = (id: number, extra: object) => bothEndpoints({ logit_bias: { [id]: 100 }, ...extra }, 3);
    const kept = await forced(bos, { skip_special_tokens: false });
    const dropped = await forced(bos, {});
    expect([kept.completion.text, kept.chat.message.content]).toEqual(["<s><s><s>", "<s><s><s>"]);
    expect([dropped.completion.text, dropped.chat.message.content]).toEqual(["", ""]);
    const ended = await forced(eos, { skip_special_tokens: false });
    expect([ended.completion.text, ended.chat.message.content]).toEqual(["", ""]);
    expect(ended.completion.finish_reason).toBe("stop");
    const ignored = await forced(eos, { skip_special_tokens: false, ignore_eos: true });
    expect([ignored.completion.text, ignored.chat.message.content]).toEqual(["</s></s></s>", "</s></s></s>"]);
  });

  test("include_stop_str_in_output: the text ends with the stop string, streamed and whole alike", async () => {
    const plain = await bothEndpoints({}, 30);
    const stops = { completion: "the land", chat: "wicked is" };
    const texts = { completion: plain.completion.text, chat: plain.chat.message.content ?? "" };
    for (const include of [true, false]) {
      for (const endpoint of ["completion", "chat"] as const) {
        const stop = stops[endpoint];
        const end = texts[endpoint].indexOf(stop) + (include ? stop.length : 0);
        expect(texts[endpoint].indexOf(stop)).toBeGreaterThan(0);
        const body = { max_tokens: 30, temperature: 0, stop: [stop], include_stop_str_in_output: include };
        const whole =
          endpoint === "completion"
            ? (await s.client.completions.create({ model: "demo", prompt, ...body })).choices[0].text
            : (await s.client.chat.completions.create({ model: "demo", messages, ...body })).choices[0]
                .message.content;
        let streamed = "";
        if (endpoint === "completion") {
          const stream = await s.client.completions.create({ model: "demo", prompt, ...body, stream: true });
          for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? "";
        } else {
          const stream = await s.client.chat.completions.create({
            model: "demo",
            messages,
            ...body,
            stream: true,
          });
          for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
        }
        expect(whole, `${endpoint}, include ${include}`).toBe(texts[endpoint].slice(0, end));
        expect(streamed, `${endpoint}, include ${include}`).toBe(whole);
      }
    }
  });
});

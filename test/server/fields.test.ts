import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { logitsAt } from "../helpers.js";
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

  test("GET /v1/models/{id} for a served name with a slash, encoded or not", async () => {
    const named = await startServer(model, {}, { servedModelName: "org/demo" });
    try {
      expect((await named.client.models.retrieve("org/demo")).id).toBe("org/demo");
      const raw = await fetch(`${named.url}/v1/models/org/demo`);
      expect(raw.status).toBe(200);
      expect((await raw.json()).id).toBe("org/demo");
      expect((await fetch(`${named.url}/v1/models/org`)).status).toBe(404);
    } finally {
      await named.close(1000);
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
    // vLLM keeps the ending token's text too when include_stop_str_in_output says so.
    const endedKept = await forced(eos, { skip_special_tokens: false, include_stop_str_in_output: true });
    expect([endedKept.completion.text, endedKept.chat.message.content]).toEqual(["</s>", "</s>"]);
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

  test("truncate_prompt_tokens keeps the prompt's last k tokens, for completions and chat", async () => {
    const text = "In the beginning God created the heaven and the earth.";
    const ids = tokenizer.encode(text);
    const asIds = async (promptIds: number[]) =>
      (await s.client.completions.create({ model: "demo", prompt: promptIds, max_tokens: 8, temperature: 0 }))
        .choices[0].text;
    const truncated = await s.client.completions.create({
      model: "demo",
      prompt: text,
      max_tokens: 8,
      temperature: 0,
      ...{ truncate_prompt_tokens: 5 },
    });
    expect(truncated.usage?.prompt_tokens).toBe(5);
    expect(truncated.choices[0].text).toBe(await asIds(ids.slice(-5)));
    const whole = await s.client.completions.create({
      model: "demo",
      prompt: text,
      max_tokens: 8,
      temperature: 0,
      ...{ truncate_prompt_tokens: -1 },
    });
    expect(whole.usage?.prompt_tokens).toBe(ids.length);

    const chatIds: number[] = (await post(`${s.url}/tokenize`, { messages })).body.tokens;
    const chat = await s.client.chat.completions.create({
      model: "demo",
      messages,
      max_tokens: 8,
      temperature: 0,
      ...{ truncate_prompt_tokens: 4 },
    });
    expect(chat.usage?.prompt_tokens).toBe(4);
    expect(chat.choices[0].message.content).toBe(await asIds(chatIds.slice(-4)));
  });

  test("prompt_logprobs: null, then each prompt token's log-prob, rank and text with the k best (vLLM's shape)", async () => {
    const ids = tokenizer.encode(prompt);
    // The reference backend's log-softmax of the whole prompt's logits: the server's backend must agree.
    const logits = await logitsAt(new ReferenceBackend(model), ids, model.config.vocabSize);
    const expectedLogprob = (j: number) => {
      const row = Array.from(logits[j]);
      const max = Math.max(...row);
      return row[ids[j + 1]] - max - Math.log(row.reduce((sum, x) => sum + Math.exp(x - max), 0));
    };
    const r = await post(`${s.url}/v1/completions`, { prompt, max_tokens: 2, prompt_logprobs: 3, n: 2 });
    expect(r.status).toBe(200);
    for (const choice of r.body.choices) {
      const shown = choice.prompt_logprobs as (Record<
        string,
        { logprob: number; rank: number; decoded_token: string }
      > | null)[];
      expect(shown).toHaveLength(ids.length);
      expect(shown[0]).toBeNull();
      shown.slice(1).forEach((entry, j) => {
        const own = entry?.[ids[j + 1]];
        expect(Math.abs((own?.logprob ?? 0) - expectedLogprob(j))).toBeLessThan(1e-3);
        // The piece's text, its ▁ a space (the demo's pieces are plain words).
        expect(own?.decoded_token).toBe(tokenizer.idToToken(ids[j + 1]).replace("▁", " "));
        const ranked = Object.values(entry ?? {}).sort((a, b) => a.rank - b.rank);
        expect(ranked.slice(0, 3).map((e) => e.rank)).toEqual([1, 2, 3]);
        // Best first: log-probs fall as ranks rise, and the prompt token's sits where its rank says.
        for (let i = 1; i < ranked.length; i++)
          expect(ranked[i].logprob).toBeLessThanOrEqual(ranked[i - 1].logprob);
      });
    }
    expect(r.body.choices[1].prompt_logprobs).toEqual(r.body.choices[0].prompt_logprobs);

    const chat = await post(`${s.url}/v1/chat/completions`, { messages, max_tokens: 2, prompt_logprobs: 0 });
    expect(chat.status).toBe(200);
    expect(chat.body.prompt_logprobs).toHaveLength(chat.body.usage.prompt_tokens);
    expect(chat.body.prompt_logprobs[0]).toBeNull();
    for (const entry of chat.body.prompt_logprobs.slice(1)) expect(Object.keys(entry)).toHaveLength(1);
    // Not asked for: not there.
    const plain = await post(`${s.url}/v1/chat/completions`, { messages, max_tokens: 1 });
    expect(plain.body.prompt_logprobs).toBeUndefined();
  });

  test("every field vellum does not implement and every bad value is a 400 naming it, on both endpoints", async () => {
    const vocab = tokenizer.vocabSize;
    const refused: [string, object][] = [
      ["suffix", { suffix: "amen" }],
      ["use_beam_search", { use_beam_search: true }],
      ["best_of", { best_of: 2 }],
      ["foo", { foo: 1 }],
      ["response_format.foo", { response_format: { type: "json_object", foo: 1 } }],
      ["logit_bias", { logit_bias: { [vocab]: 1 } }],
      ["logit_bias", { logit_bias: { 5: 200 } }],
      ["logit_bias.-1", { logit_bias: { "-1": 1 } }],
      ["allowed_token_ids", { allowed_token_ids: [1, vocab + 7] }],
      ["allowed_token_ids", { allowed_token_ids: [] }],
      ["bad_words", { bad_words: ["  "] }],
      ["prompt_logprobs", { prompt_logprobs: 30 }],
      ["prompt_logprobs", { prompt_logprobs: 2, stream: true }],
      ["truncate_prompt_tokens", { truncate_prompt_tokens: -2 }],
      ["truncate_prompt_tokens", { truncate_prompt_tokens: 0 }],
      ["truncate_prompt_tokens", { truncate_prompt_tokens: 100_000 }],
      ["skip_special_tokens", { skip_special_tokens: "no" }],
      ["include_stop_str_in_output", { include_stop_str_in_output: 1 }],
    ];
    for (const [path, base] of [
      ["/v1/completions", { prompt }],
      ["/v1/chat/completions", { messages }],
    ] as const) {
      for (const [param, extra] of refused) {
        const r = await post(`${s.url}${path}`, { ...base, max_tokens: 1, ...extra });
        const what = `${path} ${JSON.stringify(extra)}`;
        expect(r.status, what).toBe(400);
        expect(r.body.error.param, what).toBe(param);
        expect(r.body.error.message, what).toContain(param.split(".").at(-1));
        expect(r.body.error.type, what).toBe("BadRequestError");
      }
    }
  });
});

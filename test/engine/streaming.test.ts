import { describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { SamplingParamError, type SamplingParams, samplingParams } from "../../src/core/sampling-params.js";
import { AdmissionError } from "../../src/core/scheduler.js";
import { LLM } from "../../src/engine/llm.js";
import type { CompletionDelta } from "../../src/engine/output-processor.js";
import { loadModel } from "../../src/model/load.js";

const params = (p: Partial<SamplingParams>) => samplingParams(p);

async function collect(stream: AsyncIterable<CompletionDelta>): Promise<CompletionDelta[]> {
  const deltas: CompletionDelta[] = [];
  for await (const d of stream) deltas.push(d);
  return deltas;
}

/** The longest end of `text` that is a proper start of `stop`: what may still become the stop string. */
function pendingStopStart(text: string, stop: string): string {
  for (let k = Math.min(stop.length - 1, text.length); k > 0; k--) {
    if (text.endsWith(stop.slice(0, k))) return stop.slice(0, k);
  }
  return "";
}

describe("AsyncEngine streaming on the bundled demo model", () => {
  const model = loadModel(bundledModelPath);
  const newLLM = (numBlocks = 200) => LLM.fromModel(model, { numBlocks });

  test("deltas add up to the final text, to LLM.generate's text and to the decoded token ids", async () => {
    const llm = await newLLM();
    const prompts = ["In the beginning", "And God said, Let there be light", "The LORD"];
    for (const p of [
      params({ temperature: 0, maxTokens: 60 }),
      params({ temperature: 0.9, seed: 3, maxTokens: 60 }),
    ]) {
      const offline = await llm.generate(prompts, p);
      const streamed = await Promise.all(
        prompts.map((text) => collect(llm.engine.generate(model.tokenizer.encode(text), p))),
      );
      streamed.forEach((deltas, i) => {
        const promptIds = model.tokenizer.encode(prompts[i]);
        const text = deltas.map((d) => d.text).join("");
        const ids = deltas.flatMap((d) => d.tokenIds);
        expect(deltas.filter((d) => d.finished)).toHaveLength(1);
        expect(deltas[deltas.length - 1].finished).toBe(true);
        expect(ids).toEqual(offline[i].outputs[0].tokenIds);
        expect(text).toEqual(offline[i].outputs[0].text);
        // The continuation of the prompt's text (decoded alone, a first token would lose its leading space).
        expect(model.tokenizer.decode(promptIds) + text).toEqual(
          model.tokenizer.decode([...promptIds, ...ids]),
        );
        expect(text.length).toBeGreaterThan(20);
      });
    }
  });

  test("a stop string is never emitted, and text is held back only while it could still start one", async () => {
    const llm = await newLLM();
    const prompt = model.tokenizer.encode("In the beginning");
    const plain = await collect(llm.engine.generate(prompt, params({ temperature: 0, maxTokens: 80 })));
    const fullText = plain.map((d) => d.text).join("");
    // A stop string from the second half of the text, starting at a space so its first character recurs often.
    const from = fullText.indexOf(" ", fullText.length / 2);
    const stop = fullText.slice(from, from + 6);
    expect(stop).toHaveLength(6);
    const stopAt = fullText.indexOf(stop);

    const deltas = await collect(
      llm.engine.generate(prompt, params({ temperature: 0, maxTokens: 80, stop: [stop] })),
    );
    const final = deltas[deltas.length - 1];
    expect(final.finishReason).toBe("stop");
    expect(final.stopReason).toBe(stop);
    expect(deltas.map((d) => d.text).join("")).toBe(fullText.slice(0, stopAt));

    // Before the last delta, after k tokens, the text still held back is exactly the pending start of the stop string.
    let emitted = "";
    let generated = "";
    let heldSometimes = false;
    for (const [k, d] of deltas.slice(0, -1).entries()) {
      emitted += d.text;
      generated += plain[k].text;
      expect(generated.startsWith(emitted)).toBe(true);
      const held = generated.slice(emitted.length);
      expect(held, `held-back text after token ${k + 1}`).toBe(pendingStopStart(generated, stop));
      if (held.length > 0) heldSometimes = true;
    }
    expect(heldSometimes).toBe(true);
  });

  test("include_stop_str_in_output: the text ends with the stop string, streamed at once without holding back", async () => {
    const llm = await newLLM();
    const prompt = model.tokenizer.encode("In the beginning");
    const plain = await collect(llm.engine.generate(prompt, params({ temperature: 0, maxTokens: 80 })));
    const fullText = plain.map((d) => d.text).join("");
    const generated = plain.map((_, k) =>
      plain
        .slice(0, k + 1)
        .map((d) => d.text)
        .join(""),
    );
    // Stop strings that begin in one token's text and end in a later one's, so neither half alone matches.
    const stops = [6, 9].map((len) => {
      const from = fullText.indexOf(" ", fullText.length / 3 + len);
      return fullText.slice(from - 2, from - 2 + len);
    });
    for (const stop of stops) {
      const stopEnd = fullText.indexOf(stop) + stop.length;
      const spanning = generated.findIndex((g) => g.length >= stopEnd);
      expect(generated[spanning - 1].length, "the stop string spans tokens").toBeGreaterThan(
        stopEnd - stop.length,
      );
      const deltas = await collect(
        llm.engine.generate(
          prompt,
          params({ temperature: 0, maxTokens: 80, stop: [stop], includeStopStrInOutput: true }),
        ),
      );
      expect(deltas.map((d) => d.text).join("")).toBe(fullText.slice(0, stopEnd));
      expect(deltas.at(-1)?.stopReason).toBe(stop);
      // Every delta before the last carries all of its token's text: nothing is held back.
      deltas.slice(0, -1).forEach((d, k) => {
        expect(d.text).toBe(plain[k].text);
      });
    }
  });

  test("n > 1: n seeded completions, reproducible, sharing the prompt's cached blocks", async () => {
    const prompt = model.tokenizer.encode(
      "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep.",
    );
    expect(prompt.length).toBeGreaterThanOrEqual(33); // two full blocks of 16 and a token to compute
    const p = params({ temperature: 1, seed: 11, n: 3, maxTokens: 24 });
    const runs = [];
    for (let run = 0; run < 2; run++) {
      const llm = await newLLM();
      const [out] = await llm.generate([prompt], p);
      expect(out.outputs.map((o) => o.index)).toEqual([0, 1, 2]);
      const cached = Math.floor((prompt.length - 1) / 16) * 16;
      // The first completion computes the prompt; the other two find its full blocks in the prefix cache.
      expect(out.outputs.map((o) => o.metrics?.numCachedTokens)).toEqual([0, cached, cached]);
      expect(llm.engine.core.numPrefillTokensComputed).toBe(prompt.length + 2 * (prompt.length - cached));
      runs.push(out.outputs.map((o) => o.tokenIds));
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(new Set(runs[0].map((ids) => ids.join())).size).toBeGreaterThan(1);
  });

  test("abort mid-stream (break, AbortSignal, already-aborted signal) frees the request's blocks", async () => {
    const llm = await newLLM();
    const core = llm.engine.core;
    const prompt = model.tokenizer.encode("In the beginning");
    const long = params({ temperature: 0, maxTokens: 200, ignoreEos: true });

    // Breaking out of for-await: the request ends at once, its blocks go back, the other request goes on.
    const other = collect(
      llm.engine.generate(prompt, params({ temperature: 0, maxTokens: 40, ignoreEos: true })),
    );
    let seen = 0;
    for await (const _ of llm.engine.generate(prompt, long, { requestId: "broken" })) {
      if (++seen === 3) break;
    }
    expect([...core.scheduler.running, ...core.scheduler.waiting].map((r) => r.id)).not.toContain("broken");
    expect(core.kvCacheManager.getBlockIds("broken").flat()).toEqual([]);
    expect((await other).flatMap((d) => d.tokenIds)).toHaveLength(40);
    await llm.engine.idle();
    expect(core.kvCacheManager.usage).toBe(0);

    // AbortSignal: the stream ends with an "abort" delta.
    const controller = new AbortController();
    const deltas: CompletionDelta[] = [];
    for await (const d of llm.engine.generate(prompt, long, {
      requestId: "signalled",
      signal: controller.signal,
    })) {
      deltas.push(d);
      if (deltas.length === 3) {
        controller.abort();
        expect(core.kvCacheManager.getBlockIds("signalled").flat()).toEqual([]);
      }
    }
    expect(deltas).toHaveLength(4);
    expect(deltas[3]).toMatchObject({ finished: true, finishReason: "abort" });
    await llm.engine.idle();
    expect(core.kvCacheManager.usage).toBe(0);

    // A signal aborted before generate() is called: nothing is generated.
    const gone = await collect(llm.engine.generate(prompt, long, { signal: AbortSignal.abort() }));
    expect(gone.map((d) => d.finishReason)).toEqual(["abort"]);
    expect(gone.flatMap((d) => d.tokenIds)).toEqual([]);
    await llm.engine.idle();
    expect(core.kvCacheManager.usage).toBe(0);
    expect(core.hasUnfinishedRequests).toBe(false);
  });

  test("a request its stream's consumer sends as the last one finishes is served, with the same tokens as alone", async () => {
    const llm = await newLLM();
    const p = params({ temperature: 0, maxTokens: 12 });
    const first = model.tokenizer.encode("In the beginning");
    const second = model.tokenizer.encode("The LORD");
    const alone = await collect(llm.engine.generate(second, p));
    let next: Promise<CompletionDelta[]> | undefined;
    for await (const delta of llm.engine.generate(first, p)) {
      if (delta.finished) next = collect(llm.engine.generate(second, p));
    }
    const deltas = await (next as Promise<CompletionDelta[]>);
    expect(deltas.at(-1)?.finished).toBe(true);
    expect(deltas.flatMap((d) => d.tokenIds)).toEqual(alone.flatMap((d) => d.tokenIds));
    await llm.engine.idle();
    expect(llm.engine.stats().numRunning + llm.engine.stats().numWaiting).toBe(0);
  });

  test("bad input: sampling params name the parameter, impossible requests fail at admission", async () => {
    const llm = await newLLM(8); // 8 blocks of 16 tokens: 128 tokens of KV cache
    const prompt = model.tokenizer.encode("In the beginning");
    const bad: [Partial<SamplingParams>, string][] = [
      [{ temperature: -1 }, "temperature"],
      [{ topP: 0 }, "top_p"],
      [{ topP: 1.5 }, "top_p"],
      [{ maxTokens: 0 }, "max_tokens"],
      [{ n: 0 }, "n "],
    ];
    for (const [p, name] of bad) {
      expect(() => params(p)).toThrow(SamplingParamError);
      expect(() => params(p)).toThrow(new RegExp(`^${name}`));
      await expect(llm.generate([prompt], p)).rejects.toThrow(new RegExp(`^${name}`));
    }
    await expect(llm.generate([prompt], { temprature: 0 } as Partial<SamplingParams>)).rejects.toThrow(
      'unknown sampling parameter "temprature"',
    );

    // Longer than the model allows (256 tokens), and more than the whole KV cache holds.
    const tooLong = Array.from({ length: 300 }, () => prompt[1]);
    expect(() => llm.engine.generate(tooLong, params({}))).toThrow(AdmissionError);
    expect(() => llm.engine.generate(prompt, params({ maxTokens: 200 }))).toThrow(/KV cache/);
    // LLM.generate with one impossible prompt among good ones: rejected, and nothing is left running.
    await expect(llm.generate([prompt, prompt, tooLong], { maxTokens: 8 })).rejects.toThrow(
      /maxModelLen 256/,
    );
    await llm.engine.idle();
    expect(llm.engine.core.hasUnfinishedRequests).toBe(false);
    expect(llm.engine.core.kvCacheManager.usage).toBe(0);
  });
});

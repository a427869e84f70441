import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { tool as langchainTool } from "@langchain/core/tools";
import { ChatOpenAI } from "@langchain/openai";
import { generateObject, generateText, type LanguageModel, stepCountIs, streamText, tool } from "ai";
import { zodResponseFormat, zodTextFormat } from "openai/helpers/zod";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { z } from "zod";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { startServer, type TestServer } from "../server-helpers.js";

/**
 * The agent frameworks users build on, against `vellum serve` on the 3M-parameter demo model. Such a small
 * model never writes a valid object or a tool call by itself: every parsed object and every call below is
 * valid because the grammar allows nothing else. Each client validates what it gets against the schema
 * itself (the independent check). The demo model was trained on 256-token windows; a prompt that lists
 * tools is longer, so its context is raised here (what it writes past 256 tokens is noise, which the grammar
 * constrains all the same).
 */

const person = z.object({
  name: z.string().max(24),
  age: z.number().int(),
  faithful: z.boolean(),
});
const cityArgs = z.object({ city: z.string().max(24) });
const maxTokens = 200;

describe("agent clients drive vellum serve (the bundled demo model)", () => {
  let s: TestServer;
  let base: string;
  beforeAll(async () => {
    const demo = loadModel(bundledModelPath);
    const model = { ...demo, config: { ...demo.config, maxSeqLen: 2048 } };
    s = await startServer(model, {}, { servedModelName: "demo" });
    base = `${s.url}/v1`;
  });
  afterAll(() => s.close(1000));

  describe("openai (official npm SDK)", () => {
    test("chat.completions.parse with a zod schema: the parsed object validates", async () => {
      for (const seed of [1, 2, 3]) {
        const r = await s.client.chat.completions.parse({
          model: "demo",
          messages: [{ role: "user", content: "Who was Abraham?" }],
          response_format: zodResponseFormat(person, "person"),
          max_tokens: maxTokens,
          seed,
        });
        expect(person.safeParse(r.choices[0].message.parsed).success).toBe(true);
      }
    });

    test("responses.parse with a zod text format: output_parsed validates", async () => {
      const r = await s.client.responses.parse({
        model: "demo",
        input: "Who was Abraham?",
        text: { format: zodTextFormat(person, "person") },
        max_output_tokens: maxTokens,
      });
      expect(person.safeParse(r.output_parsed).success).toBe(true);
    });
  });

  /** The AI SDK, on the chat-completions provider and on @ai-sdk/openai's default Responses path. */
  const aiSdkModels: [string, () => LanguageModel][] = [
    [
      "@ai-sdk/openai-compatible (chat completions)",
      () =>
        createOpenAICompatible({ name: "vellum", baseURL: base, supportsStructuredOutputs: true })("demo"),
    ],
    ["@ai-sdk/openai (Responses API)", () => createOpenAI({ baseURL: base, apiKey: "none" })("demo")],
  ];
  for (const [name, model] of aiSdkModels) {
    describe(`Vercel AI SDK, ${name}`, () => {
      const weather = tool({
        description: "The weather in a city",
        inputSchema: cityArgs,
        execute: async ({ city }) => `It is sunny in ${city}.`,
      });

      test("generateObject: the object validates", async () => {
        const { object } = await generateObject({
          model: model(),
          schema: person,
          prompt: "Who was Abraham?",
          maxOutputTokens: maxTokens,
          maxRetries: 0,
        });
        expect(person.safeParse(object).success).toBe(true);
      });

      test("streamText with a tool: the tool gets called with valid input", async () => {
        const result = streamText({
          model: model(),
          prompt: "What is the weather in Bethlehem?",
          tools: { weather },
          toolChoice: "required",
          maxOutputTokens: maxTokens,
          maxRetries: 0,
        });
        const calls = [];
        for await (const part of result.fullStream) {
          if (part.type === "tool-call") calls.push(part);
          if (part.type === "error") throw part.error;
        }
        expect(calls.length).toBeGreaterThan(0);
        for (const call of calls) {
          expect(call.toolName).toBe("weather");
          expect(cityArgs.safeParse(call.input).success).toBe(true);
        }
      });

      test("a two-turn tool loop: a forced call, its result sent back, then a text answer", async () => {
        const result = await generateText({
          model: model(),
          prompt: "What is the weather in Bethlehem?",
          tools: { weather },
          stopWhen: stepCountIs(2),
          prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? "required" : "none" }),
          // One call per turn (each provider reads its own key), so that the forced turn ends after its call.
          providerOptions: { vellum: { parallel_tool_calls: false }, openai: { parallelToolCalls: false } },
          maxOutputTokens: maxTokens,
          maxRetries: 0,
        });
        expect(result.steps).toHaveLength(2);
        const [first, second] = result.steps;
        expect(first.toolCalls).toHaveLength(first.toolResults.length);
        expect(first.toolResults[0].output).toMatch(/^It is sunny in /);
        expect(second.toolCalls).toHaveLength(0);
        expect(second.text.length).toBeGreaterThan(0);
      });
    });
  }

  describe("LangChain @langchain/openai", () => {
    const chat = (useResponsesApi: boolean) =>
      new ChatOpenAI({
        model: "demo",
        apiKey: "none",
        configuration: { baseURL: base },
        maxRetries: 0,
        maxTokens,
        useResponsesApi,
      });
    const weather = langchainTool(async ({ city }: { city: string }) => `It is sunny in ${city}.`, {
      name: "weather",
      description: "The weather in a city",
      schema: cityArgs,
    });

    for (const useResponsesApi of [false, true]) {
      const api = useResponsesApi ? "Responses API" : "chat completions";
      test(`bindTools returns tool_calls (${api})`, async () => {
        // On the Responses path @langchain/openai 1.6 drops a string tool_choice ("any" → "required" is never
        // sent), so that path names the function instead.
        const message = await chat(useResponsesApi)
          .bindTools([weather], { tool_choice: useResponsesApi ? "weather" : "any" })
          .invoke("What is the weather in Bethlehem?");
        expect(message.tool_calls?.length).toBeGreaterThan(0);
        for (const call of message.tool_calls ?? []) {
          expect(call.name).toBe("weather");
          expect(cityArgs.safeParse(call.args).success).toBe(true);
        }
      });

      test(`withStructuredOutput returns the object (${api})`, async () => {
        const object = await chat(useResponsesApi).withStructuredOutput(person).invoke("Who was Abraham?");
        expect(person.safeParse(object).success).toBe(true);
      });
    }
  });
});

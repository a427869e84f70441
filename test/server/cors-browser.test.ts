import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { describeBrowser, launchChromium } from "../browser.js";
import { startServer, type TestServer } from "../server-helpers.js";

/** The headers the official openai client (v6) sends from a browser, besides authorization and content-type. */
const stainlessHeaders = {
  "x-stainless-arch": "unknown",
  "x-stainless-lang": "js",
  "x-stainless-os": "Unknown",
  "x-stainless-package-version": "6.30.1",
  "x-stainless-retry-count": "0",
  "x-stainless-runtime": "browser:chrome",
  "x-stainless-runtime-version": "150.0.0",
  "x-stainless-timeout": "600",
};

/** From the page, a chat completion the way the openai client sends one; the status, or the fetch's error. */
function chatFromPage(page: Page, url: string) {
  return page.evaluate(
    async ({ url, headers }) => {
      try {
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: "Bearer k", "content-type": "application/json", ...headers },
          body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 3 }),
        });
        const body = await res.json();
        return { status: res.status, object: body.object as string };
      } catch (err) {
        return { error: String(err) };
      }
    },
    { url, headers: stainlessHeaders },
  );
}

describeBrowser("CORS from a page on another origin (Chromium)", () => {
  const model = loadModel(bundledModelPath);
  let browser: Browser;
  let pageServer: Server;
  let pageOrigin: string;
  const servers: TestServer[] = [];
  /** A vellum server that allows `corsOrigin` (none when undefined). */
  const vellum = async (corsOrigin?: string) => {
    const s = await startServer(model, { numBlocks: 64 }, { apiKey: "k", corsOrigin });
    servers.push(s);
    return s;
  };

  beforeAll(async () => {
    pageServer = createServer((_req, res) => res.end("<!doctype html><title>another origin</title>"));
    await new Promise<void>((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
    pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all(servers.map((s) => s.close(1000)));
    pageServer?.close();
  });

  test("allowed: the preflight passes with the openai client's headers and the chat completes", async () => {
    const s = await vellum(pageOrigin);
    const page = await browser.newPage();
    await page.goto(pageOrigin);
    expect(await chatFromPage(page, s.url)).toEqual({ status: 200, object: "chat.completion" });
  });

  test("refused: another origin allowed, or none, and the browser blocks the request", async () => {
    const page = await browser.newPage();
    await page.goto(pageOrigin);
    for (const s of [await vellum("https://elsewhere.example"), await vellum()]) {
      const result = await chatFromPage(page, s.url);
      expect(result).toEqual({ error: expect.stringContaining("Failed to fetch") });
    }
  });
});

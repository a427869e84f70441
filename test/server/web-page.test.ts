import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath, projectRoot } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { describeBrowser, launchChromium } from "../browser.js";
import { post, rawStatus, startServer, type TestServer } from "../server-helpers.js";

/** With VELLUM_SCREENSHOTS=1 the tests also write the README's screenshots of both views here. */
const screenshotDir = process.env.VELLUM_SCREENSHOTS === "1" ? join(projectRoot, "docs", "screenshots") : "";
const apiKey = "sk-web-page-test";

/** Token ids for a prompt: `length` ids from `first` on, the same for the same arguments. */
const tokens = (first: number, length: number) => Array.from({ length }, (_, i) => first + i);

// What `npm run build` does for the page, so that this file tests the page as its sources are now.
beforeAll(() => {
  execFileSync(process.execPath, [join(projectRoot, "web", "build.mjs")]);
});

describe("GET / and /assets/ (the page's files)", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(syntheticModel("tiny-test", "f32"), { numBlocks: 16 }, { apiKey });
  });
  afterAll(() => s.close(1000));

  test("are public, like /health: the page itself asks for the key", async () => {
    const page = await fetch(`${s.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    for (const asset of ["/assets/app.js", "/assets/app.css"]) {
      expect(html).toContain(asset);
      expect((await fetch(`${s.url}${asset}`)).status).toBe(200);
    }
  });

  test("serve nothing outside the page's folder, and anything else still needs the key", async () => {
    const traversal = await fetch(`${s.url}/assets/..%2f..%2fpackage.json`);
    expect(traversal.status).toBe(403);
    expect((await traversal.json()).error.type).toBe("PermissionDeniedError");
    expect(await rawStatus(s.url, "GET", "/assets/../../package.json")).toBe(401); // no route: it needs the key
    expect((await fetch(`${s.url}/assets/nothing.js`)).status).toBe(404);
    expect((await fetch(`${s.url}/index.html`)).status).toBe(401);
  });
});

describeBrowser("the web page in headless Chromium (bundled model)", () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const complete = (prompt: number[], maxTokens: number) =>
    post(
      `${s.url}/v1/completions`,
      { prompt, max_tokens: maxTokens, ignore_eos: true },
      { authorization: `Bearer ${apiKey}` },
    );

  beforeAll(async () => {
    // On the reference backend a step of 8 requests takes tens of milliseconds: they run for seconds, long enough
    // for the page's 10 Hz snapshots to show them on any machine.
    s = await startServer(loadModel(bundledModelPath), { numBlocks: 160, backend: "reference" }, { apiKey });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(error.message));
    // The key as the page's field stores it, so that no request goes out without it.
    await page.addInitScript((key) => localStorage.setItem("vellum-api-key", key), apiKey);
    await page.goto(s.url);
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close(1000);
  });

  test("GET / serves the page: it names the model, sends a chat message and shows the streamed reply", async () => {
    await expect.poll(() => page.getByTestId("model").textContent()).toBe("kjv-demo");
    const messages = [{ role: "user" as const, content: "And God said" }];
    await page.getByLabel("Temperature").fill("0");
    await page.getByLabel("Max tokens").fill("24");
    const streamed = page.waitForResponse("**/v1/chat/completions");
    await page.getByPlaceholder(/^Message/).fill(messages[0].content);
    await page.getByPlaceholder(/^Message/).press("Enter");
    expect((await streamed).headers()["content-type"]).toMatch(/^text\/event-stream/);
    const stats = page.getByTestId("turn-stats");
    await stats.waitFor();

    // Greedy decoding: the reply is the one the official client gets for the same conversation.
    const expected = await s.client.chat.completions.create({
      model: "kjv-demo",
      messages,
      temperature: 0,
      max_tokens: 24,
    });
    const reply = page.getByTestId("turn-assistant").locator(".content");
    expect(await reply.textContent()).toBe(expected.choices[0].message.content);
    const shown = /^TTFT (\d+) ms · (\d+) tokens · ([\d.]+) tokens\/s$/.exec(
      (await stats.textContent()) ?? "",
    );
    expect(shown, "TTFT, tokens and tokens/s under the reply").not.toBeNull();
    expect(Number(shown?.[2])).toBe(expected.usage?.completion_tokens);
    if (screenshotDir !== "") {
      mkdirSync(screenshotDir, { recursive: true });
      await page.screenshot({ path: join(screenshotDir, "chat.png") });
    }
  });

  test("the block map shows blocks in use while 8 requests run, evictable ones once they finish", async () => {
    await page.getByTestId("tab-engine").click();
    await page.getByTestId("block-map").waitFor();
    const promptLength = 40;
    const maxTokens = 60;
    const runs = Array.from({ length: 8 }, (_, i) => complete(tokens(200 + 50 * i, promptLength), maxTokens));
    // Each running request holds at least its prompt's blocks; no two of these prompts share a block.
    // Read from one render: the blocks in use while the page shows 8 requests running.
    const shown = await page.waitForFunction(() => {
      const text = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.textContent;
      return text("running-count") === "8" && Number(text("blocks-used"));
    });
    const used = (await shown.jsonValue()) as number;
    expect(used).toBeGreaterThanOrEqual(8 * Math.ceil(promptLength / 16));
    expect(used).toBeLessThanOrEqual(8 * Math.ceil((promptLength + maxTokens) / 16));
    expect(await page.getByTestId("blocks-shared").textContent()).toBe("0");
    if (screenshotDir !== "") {
      await page.waitForTimeout(500); // a little history in the charts
      await page.screenshot({ path: join(screenshotDir, "engine.png"), fullPage: true });
    }
    for (const run of await Promise.all(runs)) expect(run.status).toBe(200);

    // Finished: nothing in use, and their full blocks stay cached until evicted.
    await page.waitForFunction(
      () => document.querySelector('[data-testid="running-count"]')?.textContent === "0",
    );
    await expect.poll(() => page.getByTestId("blocks-used").textContent()).toBe("0");
    const evictable = Number(await page.getByTestId("blocks-evictable").textContent());
    expect(evictable).toBeGreaterThanOrEqual(8 * Math.floor((promptLength + maxTokens - 1) / 16));
  });

  test("two requests with a common prefix share its full blocks, each with ref count 2", async () => {
    const common = tokens(1000, 80); // 5 full blocks of 16
    const runs = [
      complete([...common, ...tokens(1100, 10)], 60),
      complete([...common, ...tokens(1200, 10)], 60),
    ];
    await page.waitForFunction(
      () => document.querySelector('[data-testid="running-count"]')?.textContent === "2",
    );
    await expect.poll(() => page.getByTestId("blocks-shared").textContent()).toBe(String(common.length / 16));
    for (const run of await Promise.all(runs)) expect(run.status).toBe(200);
  });

  test("a page without the key says so, and works once it is typed into the key field", async () => {
    const context = await browser.newContext(); // its own storage: no key kept
    const fresh = await context.newPage();
    await fresh.goto(s.url);
    await expect
      .poll(() => fresh.locator("header .error").textContent())
      .toBe("this server needs an API key: enter it above");
    await fresh.getByLabel("API key").fill(apiKey);
    await fresh.getByLabel("API key").press("Enter");
    await expect.poll(() => fresh.getByTestId("model").textContent()).toBe("kjv-demo");
    expect(await fresh.locator("header .error").textContent()).toBe("");
    await context.close();
  });

  test("no console errors", () => {
    expect(consoleErrors).toEqual([]);
  });
});

import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { describe, test } from "vitest";

/**
 * Debian's Chromium, driven by playwright-core (which downloads no browser). `.ci/run` installs it when absent and
 * sets VELLUM_REQUIRE_BROWSER=1; on a machine without it the browser suites are one skipped test with a notice.
 */
export const chromiumPath = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((path) =>
  existsSync(path),
);

if (chromiumPath === undefined && process.env.VELLUM_REQUIRE_BROWSER === "1") {
  throw new Error("VELLUM_REQUIRE_BROWSER=1 but no chromium at /usr/bin/chromium (apt-get install chromium)");
}

/** `describe` for suites that drive a real browser; skipped with a printed notice where Chromium is absent. */
export const describeBrowser = (name: string, fn: () => void) => {
  if (chromiumPath !== undefined) return describe(name, fn);
  const why = "needs Chromium at /usr/bin/chromium (apt-get install chromium)";
  console.warn(`[skip] ${name}: ${why}`);
  return describe.skip(name, () => {
    test(`skipped: ${why}`, () => {});
  });
};

/** A headless Chromium; close it in afterAll. */
export function launchChromium(): Promise<Browser> {
  if (chromiumPath === undefined) throw new Error("no chromium");
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox"] });
}

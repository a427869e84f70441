import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const web = dirname(fileURLToPath(import.meta.url));

/**
 * Bundles the web page (web/src, with Preact, htm and uPlot) into dist/web: index.html, assets/app.js and
 * assets/app.css. No CDN: the server serves everything the page loads. Run by `npm run build`.
 */
export async function buildWebPage(outdir = join(web, "..", "dist", "web")) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  await build({
    entryPoints: { "assets/app": join(web, "src", "main.ts") },
    outdir,
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    logLevel: "warning",
  });
  copyFileSync(join(web, "index.html"), join(outdir, "index.html"));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildWebPage();

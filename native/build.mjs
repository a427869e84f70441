// Builds the native addon (build/Release/vellum_native.node) with node-gyp; the package's `install` script.
// node-gyp needs Node's C headers: official Node builds, nvm and most distribution packages ship them in
// <prefix>/include/node, so we point node-gyp there and it works offline; otherwise it downloads them.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

const prefix = dirname(dirname(process.execPath));
const localHeaders = existsSync(join(prefix, "include", "node", "node_api.h"));
const args = ["rebuild", ...(localHeaders ? [`--nodedir=${prefix}`] : [])];
const result = spawnSync("node-gyp", args, { stdio: "inherit", shell: process.platform === "win32" });
// A failed build must not fail the install: vellum then runs on its reference backend and says so once.
// (CI checks that the addon was built: test/native-*.test.ts fails there without it.)
if (result.error || result.status !== 0) {
  const why = result.error
    ? `cannot run node-gyp: ${result.error.message}`
    : `node-gyp exited with ${result.status}`;
  console.error(
    `vellum: the native addon was not built (${why}); vellum will use the slow reference backend`,
  );
}

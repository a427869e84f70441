// Builds native/check/kernel-paths.cc into build/check/kernel-paths and runs it: every SIMD kernel path this
// CPU runs checked against the scalar one, then their matmul speeds. `npm run check:kernels -- [threads]
// [--static]` (threads: default, every CPU the machine has); --static builds a binary to carry to a machine
// without a compiler and does not run it. It compiles at -O3, as binding.gyp builds the addon: at -O2 GCC leaves the
// matmul tiles' register arrays in memory, and their speeds fall to a third (tileX32 q8_0 at T = 16, one Zen 5
// thread: 81 against 253 GMAC/s).
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";

const args = process.argv.slice(2);
const only = args.includes("--static");
const threads = args.find((a) => /^\d+$/.test(a));
const src = "native/src/backend";
const sources = [
  "kernels-avx2",
  "kernels-avx512-vnni",
  "kernels-avx512-bf16",
  "kernels-scalar",
  "kernels-common",
]
  .concat(["cpu-features", "huge-pages", "ops", "parallel-matmul", "thread-pool"])
  .map((f) => `${src}/${f}.cc`);
const out = "build/check/kernel-paths";
mkdirSync("build/check", { recursive: true });
const cxx = process.env.CXX ?? "c++";
const flags = ["-O3", "-std=c++17", "-pthread", "-Wno-psabi", `-I${src}`, ...(only ? ["-static"] : [])];
const build = spawnSync(cxx, [...flags, "native/check/kernel-paths.cc", ...sources, "-o", out], {
  stdio: "inherit",
});
if (build.status !== 0) process.exit(build.status ?? 1);
if (only) {
  console.log(`built ${out}`);
} else {
  process.exit(spawnSync(out, threads ? [threads] : [], { stdio: "inherit" }).status ?? 1);
}

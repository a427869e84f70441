import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The C++ addon's f32 GEMM (native/src/gemm.cc), built by `node-gyp rebuild` into build/Release.
 * C = op(A) · op(B) (or C += … with `accumulate`), row-major with leading dimensions:
 * op(A) is M×K (A stored K×M when transA), op(B) is K×N (B stored N×K when transB), C is M×N.
 * Matrices may be subarray views. Runs synchronously on `threads` threads.
 */
export type NativeGemm = (
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  lda: number,
  B: Float32Array,
  ldb: number,
  C: Float32Array,
  ldc: number,
  accumulate: boolean,
  threads: number,
) => void;

/** build/ sits two levels above this file both in src/train and in dist/train. */
const addonPath = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "build",
  "Release",
  "vellum_native.node",
);

let cached: NativeGemm | undefined;

/** The addon's gemm; throws a one-line error naming the missing file when the addon is not built. */
export function nativeGemm(): NativeGemm {
  if (!cached) {
    try {
      cached = (createRequire(import.meta.url)(addonPath) as { gemm: NativeGemm }).gemm;
    } catch (err) {
      throw new Error(
        `${addonPath}: cannot load the native addon (build it with \`npm run install\`): ${String(err)}`,
      );
    }
  }
  return cached;
}

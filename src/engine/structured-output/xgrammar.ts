import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import type * as XGrammarApi from "@mlc-ai/web-xgrammar";

/**
 * Loading XGrammar (@mlc-ai/web-xgrammar, the grammar engine vLLM uses, compiled to WebAssembly) in Node.
 *
 * Its lib/index.js is a UMD bundle inside a `"type": "module"` package, so neither `import` nor `require` loads
 * it: its text is run as a CommonJS function. Two edits to that text, both checked:
 * - the Emscripten module gets an argument object of ours. Emscripten makes that object the module itself, so
 *   it carries the raw bindings (synchronous constructors, views into WebAssembly memory, which the public API
 *   only offers behind promises or copies) and receives what the C++ code writes to stderr (`printErr`):
 *   XGrammar's only account of what is wrong with a grammar.
 * - the WebAssembly binary, embedded as base64, is compiled once per process and instantiated per instance
 *   (a new instance then costs a few ms instead of tens).
 *
 * XGrammar reports a bad grammar by aborting the WebAssembly instance (it is built without C++ exceptions): the
 * call throws a RuntimeError, and the instance is left with leaked memory and held locks (a later compile can
 * spin forever). So an instance that has aborted is never used again; see grammar-compiler.ts for how user
 * input is kept away from the instance that serves requests.
 */

/** The raw Emscripten bindings this project uses (the names of XGrammar's web binding, cpp/web/xgrammar_binding.cc). */
export interface XGrammarBinding {
  GrammarMatcher: new (
    compiledGrammar: unknown,
    overrideStopTokens: undefined,
    terminateWithoutStopToken: boolean,
    maxRollbackTokens: number,
  ) => RawMatcher;
  /** A view of a std::vector<int32_t> in WebAssembly memory, valid until the vector is deleted or memory grows. */
  vecIntToView(vector: RawIntVector): Int32Array;
}

export interface RawIntVector {
  delete(): void;
}

export interface RawMatcher {
  GetNextTokenBitmask(vocabSize: number): RawIntVector;
  AcceptToken(tokenId: number, verbose: boolean): boolean;
  IsTerminated(): boolean;
  delete(): void;
}

/** One WebAssembly instance of XGrammar: the public API and the raw bindings, sharing one memory. */
export interface XGrammarInstance {
  api: typeof XGrammarApi;
  binding: XGrammarBinding;
  /** Takes the lines the instance wrote to stderr since the last call (XGrammar's error messages). */
  takeStderr(): string[];
}

interface LoadedSource {
  /** index.js with the module argument wired in and the embedded binary removed. */
  code: string;
  path: string;
  wasm: WebAssembly.Module;
}

let source: LoadedSource | undefined;

/** Reads and prepares the package's code once per process. */
function loadSource(): LoadedSource {
  if (source) return source;
  const require = createRequire(import.meta.url);
  const path = require.resolve("@mlc-ai/web-xgrammar");
  const text = readFileSync(path, "utf8");
  const init = "binding = await Module();";
  const embedded = /wasmBinaryFile="data:application\/octet-stream;base64,([A-Za-z0-9+/=]+)"/.exec(text);
  if (text.split(init).length !== 2 || !embedded) {
    throw new Error(`${path}: not the @mlc-ai/web-xgrammar build this loader knows (0.1.27)`);
  }
  const wasm = new WebAssembly.Module(Buffer.from(embedded[1], "base64"));
  const code = text
    .replace(init, "binding = await Module(vellumModuleArg);")
    .replace(embedded[0], 'wasmBinaryFile=""');
  source = { code, path, wasm };
  return source;
}

/** A fresh, initialized XGrammar instance. */
export async function loadXGrammar(): Promise<XGrammarInstance> {
  const { code, path, wasm } = loadSource();
  const stderr: string[] = [];
  const moduleArg = {
    printErr: (line: string) => stderr.push(line),
    print: () => {},
    instantiateWasm(
      imports: WebAssembly.Imports,
      receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
    ) {
      const instance = new WebAssembly.Instance(wasm, imports);
      receive(instance, wasm);
      return instance.exports;
    },
  };
  const module = { exports: {} as typeof XGrammarApi };
  const require = createRequire(path);
  new Function("exports", "module", "require", "__filename", "__dirname", "vellumModuleArg", code)(
    module.exports,
    module,
    require,
    path,
    dirname(path),
    moduleArg,
  );
  const api = module.exports;
  // The first call of the public API initializes the instance (and makes moduleArg the module).
  (await api.Grammar.fromEBNF('root ::= "a"')).dispose();
  return {
    api,
    binding: moduleArg as unknown as XGrammarBinding,
    takeStderr: () => stderr.splice(0),
  };
}

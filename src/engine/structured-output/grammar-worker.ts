import { parentPort, workerData } from "node:worker_threads";
import type * as XGrammarApi from "@mlc-ai/web-xgrammar";
import { InputError } from "../../model/errors.js";
import type { StructuredOutputSpec } from "../../model/structured-output-spec.js";
import type { GrammarVocabulary } from "./grammar-vocabulary.js";
import { checkJsonSchema } from "./json-schema-check.js";
import { type MaskSlot, publishMask } from "./mask-slot.js";
import { loadXGrammar, type RawMatcher, type XGrammarInstance } from "./xgrammar.js";

/**
 * The grammar thread: XGrammar with the served model's vocabulary, its compiled grammars and every request's
 * matcher. Compiling a JSON schema for a 128k vocabulary takes about a second of WebAssembly, so it runs here,
 * never on the event loop; matchers live here too, since a compiled grammar cannot leave the instance that
 * compiled it. After each accepted token the thread computes the matcher's next mask at once into the
 * matcher's shared slot, so the mask is mostly ready before the runner asks for it.
 */

export type GrammarJob =
  | { type: "compile"; id: number; spec: StructuredOutputSpec }
  | { type: "drop"; grammarId: number }
  | { type: "create"; matcherId: number; grammarId: number; slot: SharedArrayBuffer }
  | { type: "accept"; matcherId: number; tokenId: number }
  | { type: "dispose"; matcherId: number };

export type CompileReply = { id: number; ok: true } | { id: number; error: string; inputError: boolean };

/**
 * JSON layout: compact, on one line, with Python's json.dumps separators (`{"a": 1, "b": [2, 3]}`), which is
 * XGrammar's `any_whitespace=False` and what OpenAI's structured outputs return. vLLM allows any whitespace
 * by default, but a budget of whitespace is either too small for pretty-printed JSON of any depth or large
 * enough for a small model to spend its tokens on it: with up to 20 characters per gap (llama.cpp's bound)
 * the bundled 3M-parameter model filled nearly every gap to the bound, and a 4-level object ran past its
 * 256-token context. With no whitespace to choose, every token goes to the content.
 */
const anyWhitespace = false;

type CompiledGrammar = XGrammarApi.CompiledGrammar;

interface Matcher {
  raw: RawMatcher;
  slot: MaskSlot;
}

const vocabulary = workerData as GrammarVocabulary;
/** The instance that serves requests: it only ever sees input the checker has parsed. */
const main = await loadXGrammar();
const tokenizerInfo = await main.api.TokenizerInfo.createTokenizerInfo(
  vocabulary.encodedVocab,
  vocabulary.vocabType,
  vocabulary.addPrefixSpace,
  vocabulary.vocabSize,
  vocabulary.stopIds,
);
const compiler = await main.api.GrammarCompiler.createGrammarCompiler(tokenizerInfo, false);
/**
 * Where user input is parsed first: converting a schema or grammar needs no vocabulary, and a bad one aborts
 * the instance, which is then replaced (see xgrammar.ts).
 */
let checker: XGrammarInstance | undefined;
const grammars = new Map<number, CompiledGrammar>();
const matchers = new Map<number, Matcher>();

/** Each job in arrival order: a compile finishes before the matchers created from it are used. */
let queue = Promise.resolve();
parentPort?.on("message", (job: GrammarJob) => {
  queue = queue.then(() => run(job)).catch(crash);
});

/** A failure that is not the user's input leaves XGrammar in doubt: the thread ends, and the engine sees why. */
function crash(error: unknown): void {
  setImmediate(() => {
    throw error;
  });
}

async function run(job: GrammarJob): Promise<void> {
  switch (job.type) {
    case "compile": {
      let reply: CompileReply;
      try {
        grammars.set(job.id, await compile(job.spec));
        reply = { id: job.id, ok: true };
      } catch (e) {
        reply = {
          id: job.id,
          error: e instanceof Error ? e.message : String(e),
          inputError: e instanceof InputError,
        };
      }
      parentPort?.postMessage(reply);
      return;
    }
    case "drop":
      grammars.get(job.grammarId)?.dispose();
      grammars.delete(job.grammarId);
      return;
    case "create": {
      const grammar = grammars.get(job.grammarId);
      if (!grammar) throw new Error(`grammar ${job.grammarId} is not compiled`);
      const matcher = {
        raw: new main.binding.GrammarMatcher(grammar.handle, undefined, false, -1),
        slot: job.slot,
      };
      matchers.set(job.matcherId, matcher);
      fillMask(matcher);
      return;
    }
    case "accept": {
      const matcher = matchers.get(job.matcherId);
      if (!matcher) return;
      if (!matcher.raw.AcceptToken(job.tokenId, false)) throw new Error(`token ${job.tokenId} refused`);
      if (!matcher.raw.IsTerminated()) fillMask(matcher);
      return;
    }
    case "dispose":
      matchers.get(job.matcherId)?.raw.delete();
      matchers.delete(job.matcherId);
      return;
  }
}

/** The matcher's next mask, copied from XGrammar's vector into the shared slot, then published. */
function fillMask({ raw, slot }: Matcher): void {
  const vector = raw.GetNextTokenBitmask(vocabulary.vocabSize);
  publishMask(slot, main.binding.vecIntToView(vector), vocabulary.vocabSize);
  vector.delete();
}

/** Parses the spec in the checker (an InputError saying what is wrong), then compiles it for the vocabulary. */
async function compile(spec: StructuredOutputSpec): Promise<CompiledGrammar> {
  const { parse, build } = xgrammarCalls(spec);
  checker ??= await loadXGrammar();
  try {
    (await parse(checker)).dispose();
  } catch (e) {
    const said = checker.takeStderr();
    checker = undefined;
    throw new InputError(xgrammarError(said, e));
  }
  try {
    return await build();
  } catch (e) {
    crash(
      new Error(`XGrammar failed to compile a grammar it had parsed: ${xgrammarError(main.takeStderr(), e)}`),
    );
    throw new Error("the grammar thread failed");
  }
}

/** How XGrammar parses a spec (without a vocabulary) and compiles it (with one). */
function xgrammarCalls(spec: StructuredOutputSpec): {
  parse(x: XGrammarInstance): Promise<{ dispose(): void }>;
  build(): Promise<CompiledGrammar>;
} {
  switch (spec.type) {
    case "json_schema":
    case "json_object": {
      const schema = spec.type === "json_object" ? { type: "object" } : spec.schema;
      if (spec.type === "json_schema") checkJsonSchema(schema);
      let ebnf = "";
      return {
        parse: async (x) => {
          ebnf = await jsonSchemaEbnf(x, schema);
          return x.api.Grammar.fromEBNF(ebnf);
        },
        build: () => compiler.compileGrammar(ebnf),
      };
    }
    case "grammar":
      return {
        parse: (x) => x.api.Grammar.fromEBNF(spec.grammar),
        build: () => compiler.compileGrammar(spec.grammar),
      };
    case "regex":
    case "choice": {
      const tag = JSON.stringify(structuralTagOf(spec));
      return {
        parse: (x) => x.api.Grammar.fromStructuralTag(tag),
        build: () => compiler.compileStructuralTag(tag),
      };
    }
    case "structural_tag": {
      let tag = spec.structuralTag;
      return {
        parse: async (x) => {
          tag = JSON.stringify(await compactJsonContents(x, JSON.parse(spec.structuralTag)));
          return x.api.Grammar.fromStructuralTag(tag);
        },
        build: () => compiler.compileStructuralTag(tag),
      };
    }
  }
}

/**
 * The EBNF of a JSON schema in the compact layout (see anyWhitespace). XGrammar 0.1.27 writes the characters of
 * a length-limited string (maxLength, minLength) as [^"\\\r\n], which lets raw control characters such as a
 * tab into the string: invalid JSON. They get the class its other strings use, which leaves out U+0000–U+001F.
 */
async function jsonSchemaEbnf(x: XGrammarInstance, schema: unknown): Promise<string> {
  const grammar = await x.api.Grammar.fromJSONSchema(
    JSON.stringify(schema),
    anyWhitespace,
    -1,
    undefined,
    true,
  );
  const ebnf = grammar.toString();
  grammar.dispose();
  return ebnf.replaceAll(String.raw`[^\"\\\r\n]`, String.raw`[^\0-\x1f\"\\\r\n]`);
}

/**
 * A structural tag with each JSON-schema content (`{type: "json_schema", json_schema}`) turned into the
 * grammar of the same compact layout a json_schema spec gets (see anyWhitespace): XGrammar's structural tags
 * allow any whitespace in JSON, which a small model fills instead of writing the arguments of a forced call.
 */
async function compactJsonContents(x: XGrammarInstance, value: unknown): Promise<unknown> {
  if (Array.isArray(value)) return Promise.all(value.map((v) => compactJsonContents(x, v)));
  if (typeof value !== "object" || value === null) return value;
  const node = value as Record<string, unknown>;
  if (node.type === "json_schema" && "json_schema" in node) {
    checkJsonSchema(node.json_schema);
    return { type: "grammar", grammar: await jsonSchemaEbnf(x, node.json_schema) };
  }
  const entries = await Promise.all(
    Object.entries(node).map(async ([k, v]) => [k, await compactJsonContents(x, v)] as const),
  );
  return Object.fromEntries(entries);
}

/** A regex or a choice as XGrammar's structural tag, the one door its web build has to them. */
function structuralTagOf(spec: Extract<StructuredOutputSpec, { type: "regex" | "choice" }>): object {
  const format =
    spec.type === "regex"
      ? { type: "regex", pattern: spec.pattern }
      : { type: "or", elements: spec.choices.map((value) => ({ type: "const_string", value })) };
  return { type: "structural_tag", format };
}

/**
 * XGrammar's own words for what is wrong, from the lines it wrote before aborting:
 * `[FATAL] /path/json_schema_converter.cc:902: Unsupported type "foo"` → `Unsupported type "foo"`.
 */
function xgrammarError(lines: string[], error: unknown): string {
  const fatal = lines.find((l) => l.includes("[FATAL]"));
  if (!fatal) return error instanceof Error ? error.message : String(error);
  return fatal
    .replace(/^.*?\[FATAL\]\s*\S+:\d+:\s*/, "")
    .replace(/^Check failed: \(.*?\) is false:\s*/, "")
    .trim();
}

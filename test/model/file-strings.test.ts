import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { fileErrorText, quoteFileString, showFileValue } from "../../src/model/errors.js";
import { readGgufFile } from "../../src/model/formats/gguf-reader.js";
import { writeGgufFile } from "../../src/model/formats/gguf-writer.js";
import { SafetensorsFile } from "../../src/model/formats/safetensors.js";
import { loadModel } from "../../src/model/load.js";
import { expectInputError, unsafeForTerminal } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-file-strings-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const escapeSoup =
  "\u001b[2J\u001b[31mred\u001b]0;pwned\u0007\n\r\t\u0000\u007f\u009b1m\u202e\u2066\u2028\ud800";

/** The message of the InputError `fn` throws, checked to be one short line of visible characters naming `path`. */
function safeErrorOf(fn: () => unknown, path: string): string {
  const message = expectInputError(fn);
  expect(message.startsWith(`${path}: `), message).toBe(true);
  expect(message.length, message).toBeLessThan(300);
  expect(message, message).not.toMatch(unsafeForTerminal);
  return message;
}

describe("strings from files, shown in messages", () => {
  test("quoteFileString escapes what a terminal would act on, as JSON would or as \\uXXXX", () => {
    expect(quoteFileString("\u001b[2J\u001b[31mred\u001b]0;pwned\u0007")).toBe(
      '"\\u001b[2J\\u001b[31mred\\u001b]0;pwned\\u0007"',
    );
    expect(quoteFileString("\n\r\t\u0000\u007f\u009b1m\u00ad\u202e\u2066\u200f\u2028\ufeff\ud800")).toBe(
      '"\\n\\r\\t\\u0000\\u007f\\u009b1m\\u00ad\\u202e\\u2066\\u200f\\u2028\\ufeff\\ud800"',
    );
    expect(quoteFileString('say "hi" \\ ok')).toBe('"say \\"hi\\" \\\\ ok"');
  });

  test("printable text stays as it is, astral characters whole", () => {
    expect(quoteFileString("héllo ▁wörld 🦙 日本")).toBe('"héllo ▁wörld 🦙 日本"');
    expect(quoteFileString("")).toBe('""');
  });

  test("long strings are cut at 80 shown characters and say how long they were", () => {
    const long = "x".repeat(5_400_000);
    expect(quoteFileString(long)).toBe(`"${"x".repeat(80)}…" (5400000 characters)`);
    // Escapes count toward the 80; a cut never splits an escape or a surrogate pair.
    const escapes = quoteFileString("\u001b".repeat(1000));
    expect(escapes).toBe(`"${"\\u001b".repeat(13)}…" (1000 characters)`);
    expect(quoteFileString("🦙".repeat(100))).not.toMatch(unsafeForTerminal);
    expect(quoteFileString("x".repeat(80))).toBe(`"${"x".repeat(80)}"`);
  });

  test("showFileValue: strings quoted, other JSON values short and escaped", () => {
    expect(showFileValue("F\u001b32")).toBe('"F\\u001b32"');
    expect(showFileValue([1, 2, "a\u202eb"])).toBe('[1,2,"a\\u202eb"]');
    expect(showFileValue(undefined)).toBe("undefined");
    expect(showFileValue(Array(10_000).fill(7)).length).toBeLessThanOrEqual(81);
  });

  test("fileErrorText: a parser's message becomes one short escaped line", () => {
    let parseError: unknown;
    try {
      JSON.parse(`{"a": ${escapeSoup}${"z".repeat(10_000)}}`);
    } catch (e) {
      parseError = e;
    }
    const text = fileErrorText(parseError);
    expect(text).not.toMatch(unsafeForTerminal);
    expect(text.length).toBeLessThanOrEqual(201);
    expect(fileErrorText(new Error(`line one\n\n  line two ${"w".repeat(500)}`))).toBe(
      `line one line two ${"w".repeat(182)}…`,
    );
  });
});

describe("corrupt files cannot put their bytes in a message", () => {
  test("a GGUF tensor-name length of 5.4 MB is refused at its offset before anything is decoded", () => {
    const bytes = readFileSync(bundledModelPath);
    const firstName = readGgufFile(bundledModelPath).tensors[0].name;
    const at = bytes.indexOf(Buffer.from(firstName, "latin1")) - 8;
    expect(bytes.readBigUInt64LE(at)).toBe(BigInt(firstName.length));
    bytes.writeBigUInt64LE(5_400_000n, at);
    const path = join(dir, "huge-name.gguf");
    writeFileSync(path, bytes);
    expect(safeErrorOf(() => loadModel(path), path)).toBe(
      `${path}: offset ${at} (tensor info 0): tensor name length 5400000 is over the limit of 63`,
    );
  });

  test("GGUF tensor names, keys and values full of escape sequences and newlines are shown escaped", () => {
    const path = join(dir, "escapes.gguf");
    const name = "\u001b[2J\u001b[31mevil\nname\r\u0007";
    writeGgufFile(path, new Map(), [{ name, dtype: "f32", shape: [1], data: () => new Uint8Array(4) }]);
    // A GGUF with no architecture fails on its metadata; one with one unknown tensor fails on the tensor.
    expect(safeErrorOf(() => loadModel(path), path)).toMatch(/"general\.architecture" is missing/);

    const namesPath = join(dir, "escaped-names.gguf");
    const tensor = { name, dtype: "f32" as const, shape: [1], data: () => new Uint8Array(4) };
    const placeholder = "x".repeat(name.length);
    writeGgufFile(namesPath, new Map(), [tensor, { ...tensor, name: placeholder }]);
    const bytes = readFileSync(namesPath);
    bytes.write(name, bytes.indexOf(placeholder), "latin1"); // the writer refuses duplicates: make one
    writeFileSync(namesPath, bytes);
    expect(safeErrorOf(() => loadModel(namesPath), namesPath)).toMatch(
      /\(tensor info of "\\u001b\[2J\\u001b\[31mevil\\nname\\r\\u0007"\): duplicate tensor name/,
    );

    const key = `${escapeSoup}${"k".repeat(100_000)}`;
    const keyPath = join(dir, "escaped-key.gguf");
    writeGgufFile(keyPath, new Map([[key, { type: "bool", value: true }]]), []);
    const keyed = readFileSync(keyPath);
    const boolAt = 24 + 8 + Buffer.byteLength(key) + 4;
    expect(keyed[boolAt]).toBe(1);
    keyed[boolAt] = 2;
    writeFileSync(keyPath, keyed);
    expect(safeErrorOf(() => loadModel(keyPath), keyPath)).toMatch(
      new RegExp(
        `\\(metadata key "\\\\u001b\\[2J.*…" \\(${key.length} characters\\)\\): invalid bool value 2$`,
      ),
    );

    const archPath = join(dir, "escaped-arch.gguf");
    const arch = `llama\u202e${escapeSoup}`.repeat(500);
    writeGgufFile(archPath, new Map([["general.architecture", { type: "string", value: arch }]]), []);
    expect(safeErrorOf(() => loadModel(archPath), archPath)).toMatch(
      /"general\.architecture" is "llama\\u202e\\u001b\[2J.*…" \(\d+ characters\): only llama, qwen2, qwen3, gemma2, gemma3, phi3 are supported/,
    );
  });

  test("a safetensors header key and dtype full of escape sequences are shown escaped", () => {
    const key = `${escapeSoup}${"k".repeat(10_000)}`;
    const header = JSON.stringify({
      [key]: { dtype: "\u001b]0;title\u0007", shape: [1], data_offsets: [0, 4] },
    });
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(header)));
    const path = join(dir, "escapes.safetensors");
    writeFileSync(path, Buffer.concat([length, Buffer.from(header), Buffer.alloc(4)]));
    expect(safeErrorOf(() => SafetensorsFile.open(path), path)).toMatch(
      new RegExp(
        `tensor "\\\\u001b\\[2J.*…" \\(${key.length} characters\\): unknown dtype "\\\\u001b]0;title\\\\u0007"$`,
      ),
    );
  });

  test("a safetensors header that is not JSON: the parser's message is escaped", () => {
    const header = `{"a": ${escapeSoup}}`;
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(header)));
    const path = join(dir, "not-json.safetensors");
    writeFileSync(path, Buffer.concat([length, Buffer.from(header)]));
    expect(safeErrorOf(() => SafetensorsFile.open(path), path)).toMatch(/is not valid UTF-8 JSON: .*\\u001b/);
  });
});

import { execFileSync } from "node:child_process";
import { InputError } from "../model/errors.js";

/** One book of the corpus: its name and its verses' text, in order. */
export interface Book {
  name: string;
  verses: string[];
}

/**
 * Parses the output of Debian's `bible -l100000 gen1:1-rev22:21` (package bible-kjv): a chapter header
 * "<Book> <chapter>" at the start of a line (e.g. "1 Samuel 3"), then one verse per line, "  <n> <text>".
 * Blank lines separate chapters. `source` names where the text came from, for error messages.
 */
export function parseBibleText(text: string, source: string): Book[] {
  const books: Book[] = [];
  const lines = text.split("\n");
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    const verse = /^\s+\d+ (.*)$/.exec(line);
    if (verse) {
      if (books.length === 0)
        throw new InputError(`${source}: line ${i + 1}: a verse before any chapter header`);
      books[books.length - 1].verses.push(verse[1].trim());
      continue;
    }
    const header = /^(\S.*) \d+$/.exec(line);
    if (!header)
      throw new InputError(
        `${source}: line ${i + 1}: neither a chapter header nor a verse: "${line.slice(0, 60)}"`,
      );
    if (books.at(-1)?.name !== header[1]) books.push({ name: header[1], verses: [] });
  }
  if (books.length === 0) throw new InputError(`${source}: no verses found`);
  return books;
}

/** Runs the corpus command (e.g. ["bible", "-l100000", "gen1:1-rev22:21"]) and parses its output. */
export function readBibleCorpus(command: readonly string[]): Book[] {
  const [program, ...args] = command;
  let text: string;
  try {
    text = execFileSync(program, args, { encoding: "utf8", maxBuffer: 64 << 20 });
  } catch (err) {
    throw new InputError(
      `corpus command "${command.join(" ")}" failed (install Debian's bible-kjv: apt-get install bible-kjv): ${(err as Error).message.split("\n")[0]}`,
    );
  }
  return parseBibleText(text, `output of "${command.join(" ")}"`);
}

/** Whole books as validation: the last ⌈fraction · books⌉ of them (at least one), the rest for training. */
export function splitBooks(books: Book[], validationFraction: number) {
  const numValidation = Math.max(1, Math.ceil(books.length * validationFraction));
  if (numValidation >= books.length)
    throw new InputError(`validation fraction ${validationFraction} leaves no training books`);
  return { train: books.slice(0, -numValidation), validation: books.slice(-numValidation) };
}

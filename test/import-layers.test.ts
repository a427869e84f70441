import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * The layers of ../shared/DESIGN.md (the folders of src/), bottom up, with the layers each may import; a layer
 * always imports itself. Imports run downward: server -> engine -> runner -> core -> backend -> model -> util
 * (small helpers any layer may use: a seeded PRNG, byte sizes), and the engine is the server's only door to what
 * runs a model. sim, bench and train sit on top and use any layer below them, never one another: what two of them
 * need lives below them, in workload/ (workloads, request records and their summaries, the server settings a
 * comparison varies, synthetic forward batches). cli is the entry point and imports everything.
 */
const layers: Record<string, readonly string[]> = {
  util: [],
  model: ["util"],
  backend: ["model", "util"],
  core: ["backend", "model", "util"],
  runner: ["core", "backend", "model", "util"],
  engine: ["runner", "core", "backend", "model", "util"],
  server: ["engine", "model", "util"],
  workload: ["engine", "runner", "core", "backend", "model", "util"],
  sim: ["workload", "server", "engine", "runner", "core", "backend", "model", "util"],
  bench: ["workload", "server", "engine", "runner", "core", "backend", "model", "util"],
  train: ["workload", "server", "engine", "runner", "core", "backend", "model", "util"],
  cli: [
    "sim",
    "bench",
    "train",
    "workload",
    "server",
    "engine",
    "runner",
    "core",
    "backend",
    "model",
    "util",
  ],
};

const src = resolve(import.meta.dirname, "..", "src");

/** Every .ts file under src/, relative to it (e.g. "sim/plan.ts"), with the src/ files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  for (const file of files) {
    // TypeScript's own scanner: static imports, re-exports and import() calls, none of them in comments or strings.
    const { importedFiles } = ts.preProcessFile(readFileSync(join(src, file), "utf8"), true, true);
    const targets = importedFiles
      .map((ref) => ref.fileName)
      .filter((name) => name.startsWith("."))
      .map((name) => relative(src, resolve(src, dirname(file), name)).replace(/\.js$/, ".ts"))
      .filter((target) => !target.startsWith(".."));
    graph.set(file, targets);
  }
  return graph;
}

const layerOf = (file: string) => file.split("/")[0];

/** "file -> imported file" for each import that runs upward or sideways between layers. */
function layerViolations(graph: Map<string, string[]>): string[] {
  const violations: string[] = [];
  for (const [file, targets] of graph) {
    const from = layerOf(file);
    for (const target of targets) {
      const to = layerOf(target);
      if (to !== from && !layers[from]?.includes(to)) violations.push(`${file} -> ${target}`);
    }
  }
  return violations.sort();
}

/** One cycle (a -> b -> … -> a) through each group of files that import one another, found by depth-first search. */
function importCycles(graph: Map<string, string[]>): string[] {
  const cycles: string[] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (file: string) => {
    path.push(file);
    for (const target of graph.get(file) ?? []) {
      const at = path.indexOf(target);
      if (at >= 0) cycles.push([...path.slice(at), target].join(" -> "));
      else if (!done.has(target)) visit(target);
    }
    path.pop();
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) if (!done.has(file)) visit(file);
  return cycles;
}

describe("imports follow the layers of DESIGN.md", () => {
  const graph = importGraph();
  const lines = (list: string[]) => list.map((l) => `  ${l}`).join("\n");

  it("places every folder of src/ in the layer table", () => {
    const folders = [...new Set([...graph.keys()].map(layerOf))].sort();
    const unplaced = folders.filter((f) => !(f in layers));
    expect(unplaced, `folders of src/ missing from the layer table:\n${lines(unplaced)}`).toEqual([]);
  });

  it("has no import that runs upward or sideways", () => {
    const violations = layerViolations(graph);
    expect(
      violations,
      `imports that break the layer rule (file -> imported file):\n${lines(violations)}`,
    ).toEqual([]);
  });

  it("has no cycle between files", () => {
    const cycles = importCycles(graph);
    expect(cycles, `files that import one another:\n${lines(cycles)}`).toEqual([]);
  });
});

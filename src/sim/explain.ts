import type { StepShape } from "../core/scheduler-output.js";
import type { CostModel } from "./cost-model.js";
import { type MeasuredStep, type StepTerms, stepTermNames, totalTime } from "./step-terms.js";

/** The kind a step is grouped by: its number of decodes, and whether a prefill chunk rides along. */
const kindOf = (s: StepShape) =>
  s.prefillTokens > 0 ? `prefill + ${s.decodeRequests} decodes` : `${s.decodeRequests} decodes`;

/**
 * Each kind of step beside the cost model's price of the same steps, term by term (mean ms per step), and how
 * often the real run and the simulated run of the same workload took each kind, with their mean tokens per step
 * and the simulated run's mean step time: the kinds that make up most of either run's time first, and all steps
 * together in the last row. A kind only the simulation took shows "-" for the real figures.
 */
export function explainSteps(
  real: readonly MeasuredStep[],
  simulated: readonly StepShape[],
  cost: CostModel,
  maxKinds = 10,
): string {
  const realKinds = groupBy(real, (m) => kindOf(m.step.shape));
  const simKinds = groupBy(simulated, kindOf);
  const weights = new Map(
    [...new Set([...realKinds.keys(), ...simKinds.keys()])].map((kind) => [
      kind,
      timeOf(realKinds.get(kind) ?? []) + priceOf(simKinds.get(kind) ?? [], cost),
    ]),
  );
  const kinds = [...weights.keys()]
    .sort((a, b) => (weights.get(b) as number) - (weights.get(a) as number))
    .slice(0, maxKinds);
  // Mean tokens, real terms, their price and the ratio of the totals, for real steps of a kind.
  const realCells = (ms: readonly MeasuredStep[]) => {
    if (ms.length === 0) return Array<string>(2 * (stepTermNames.length + 1) + 2).fill("-");
    const measured = meanTerms(ms.map((m) => m.terms));
    const price = meanTerms(ms.map((m) => cost.stepTerms(m.step.shape)));
    return [
      meanTokens(ms.map((m) => m.step.shape)),
      ...cells(measured),
      ...cells(price),
      `${(totalTime(price) / totalTime(measured)).toFixed(2)}x`,
    ];
  };
  const row = (label: string, ms: readonly MeasuredStep[], shapes: readonly StepShape[]) => [
    label,
    String(ms.length),
    String(shapes.length),
    ...realCells(ms),
    shapes.length === 0 ? "-" : meanTokens(shapes),
    shapes.length === 0 ? "-" : ms3(priceOf(shapes, cost) / shapes.length),
  ];
  const head = [
    "step (ms)",
    "n real",
    "n sim",
    "tokens",
    ...termHeads("real"),
    ...termHeads("sim"),
    "sim/real",
    "sim run tokens",
    "sim run total",
  ];
  const rows = [
    head,
    ...kinds.map((kind) => row(kind, realKinds.get(kind) ?? [], simKinds.get(kind) ?? [])),
    row("all steps", real, simulated),
  ];
  return formatTable(rows);
}

/**
 * How far the machine's speed moved across a run: the real steps' time beside the cost model's price of the same
 * steps at the rates measured right before the run and right after it (the simulation takes their mean).
 */
export function explainDrift(real: readonly MeasuredStep[], before: CostModel, after: CostModel): string {
  const realTime = timeOf(real);
  const shapes = real.map((m) => m.step.shape);
  const price = (cost: CostModel) => (priceOf(shapes, cost) / realTime).toFixed(2);
  return `the run's ${real.length} busy steps took ${realTime.toFixed(2)} s; priced at the rates measured before it: ${price(before)}x, after it: ${price(after)}x`;
}

/** The real steps' seconds. */
const timeOf = (real: readonly MeasuredStep[]) => real.reduce((t, m) => t + totalTime(m.terms), 0);

/** The cost model's seconds for steps of these shapes. */
export const priceOf = (shapes: readonly StepShape[], cost: CostModel) =>
  shapes.reduce((t, s) => t + totalTime(cost.stepTerms(s)), 0);

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

function meanTerms(terms: readonly StepTerms[]): StepTerms {
  const sum = { forward: 0, attention: 0, sampling: 0, overhead: 0 };
  for (const t of terms) for (const k of stepTermNames) sum[k] += t[k] / terms.length;
  return sum;
}

const meanTokens = (shapes: readonly StepShape[]) =>
  (shapes.reduce((n, s) => n + s.numTokens, 0) / shapes.length).toFixed(0);
const cells = (t: StepTerms) => [...stepTermNames.map((k) => t[k]), totalTime(t)].map(ms3);
const termHeads = (who: string) => [...stepTermNames.map((k) => `${who} ${k}`), `${who} total`];
const ms3 = (seconds: number) => (seconds * 1000).toFixed(2);

function formatTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  "))
    .join("\n");
}

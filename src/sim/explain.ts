import type { StepStats } from "../engine/stats.js";
import type { CostModel } from "./cost-model.js";
import { type MeasuredStep, measuredSteps, type StepTerms, stepTermNames, totalTime } from "./step-terms.js";

/** The kind a step is grouped by: its number of decodes, and whether a prefill chunk rides along. */
const kindOf = (s: StepStats) =>
  s.shape.prefillTokens > 0
    ? `prefill + ${s.shape.decodeRequests} decodes`
    : `${s.shape.decodeRequests} decodes`;

/**
 * Each kind of real step beside the cost model's price of the same steps, term by term (mean ms per step), the
 * kinds that make up most of the run's time first, and all steps together in the last row.
 */
export function explainSteps(steps: readonly StepStats[], cost: CostModel, maxKinds = 8): string {
  const measured = measuredSteps(steps);
  const groups = new Map<string, MeasuredStep[]>();
  for (const m of measured) groups.set(kindOf(m.step), [...(groups.get(kindOf(m.step)) ?? []), m]);
  const timeOf = (ms: MeasuredStep[]) => ms.reduce((sum, m) => sum + totalTime(m.terms), 0);
  const kinds = [...groups].sort(([, a], [, b]) => timeOf(b) - timeOf(a)).slice(0, maxKinds);
  const row = (label: string, ms: MeasuredStep[]) => {
    const mean = (f: (m: MeasuredStep) => StepTerms) => {
      const sum = { forward: 0, attention: 0, sampling: 0, overhead: 0 };
      for (const m of ms) for (const k of stepTermNames) sum[k] += f(m)[k] / ms.length;
      return sum;
    };
    const real = mean((m) => m.terms);
    const simulated = mean((m) => cost.stepTerms(m.step.shape));
    const cells = (t: StepTerms) => [...stepTermNames.map((k) => t[k]), totalTime(t)].map(ms3);
    return [
      label,
      String(ms.length),
      ...cells(real),
      ...cells(simulated),
      `${(totalTime(simulated) / totalTime(real)).toFixed(2)}x`,
    ];
  };
  const head = ["step (ms)", "n", ...termHeads("real"), ...termHeads("sim"), "sim/real"];
  const rows = [head, ...kinds.map(([kind, ms]) => row(kind, ms)), row("all steps", measured)];
  return formatTable(rows);
}

const termHeads = (who: string) => [...stepTermNames.map((k) => `${who} ${k}`), `${who} total`];
const ms3 = (seconds: number) => (seconds * 1000).toFixed(2);

function formatTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  "))
    .join("\n");
}

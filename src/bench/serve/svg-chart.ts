/** Minimal self-contained SVG charts for the HTML report: lines/points on linear axes, and grouped bars. */

export interface Series {
  label: string;
  points: [number, number][];
}

const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const W = 560;
const H = 320;
const M = { left: 64, right: 16, top: 32, bottom: 48 };

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** About five round tick values from 0 to max. */
function ticks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

function frame(
  title: string,
  xLabel: string,
  yLabel: string,
  xTicks: string[],
  xs: number[],
  yTicks: number[],
  y: (v: number) => number,
): string {
  const parts = [
    `<text x="${W / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(14 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  ];
  for (const v of yTicks) {
    parts.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${M.left - 6}" y="${y(v) + 4}" text-anchor="end">${+v.toPrecision(4)}</text>`,
    );
  }
  xTicks.forEach((label, i) => {
    parts.push(`<text x="${xs[i]}" y="${H - M.bottom + 16}" text-anchor="middle">${esc(label)}</text>`);
  });
  return parts.join("");
}

function legend(labels: readonly string[]): string {
  return labels
    .map(
      (l, i) =>
        `<rect x="${M.left + 8}" y="${M.top + 4 + i * 16}" width="10" height="10" fill="${palette[i % palette.length]}"/>` +
        `<text x="${M.left + 24}" y="${M.top + 13 + i * 16}">${esc(l)}</text>`,
    )
    .join("");
}

const svg = (body: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">${body}</svg>`;

/** Lines (CDFs) or points (scatter) of several series on shared axes starting at 0. */
export function xyChart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: readonly Series[],
  style: "line" | "points",
): string {
  const all = series.flatMap((s) => s.points);
  const xTickValues = ticks(Math.max(0, ...all.map((p) => p[0])));
  const yTickValues = ticks(Math.max(0, ...all.map((p) => p[1])));
  const xMax = xTickValues[xTickValues.length - 1];
  const yMax = yTickValues[yTickValues.length - 1];
  const x = (v: number) => M.left + (v / xMax) * (W - M.left - M.right);
  const y = (v: number) => H - M.bottom - (v / yMax) * (H - M.top - M.bottom);
  const marks = series.map((s, i) => {
    const color = palette[i % palette.length];
    if (style === "points") {
      return s.points
        .map(
          ([a, b]) =>
            `<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="3" fill="${color}" fill-opacity="0.6"/>`,
        )
        .join("");
    }
    const d = s.points
      .map(([a, b], j) => `${j === 0 ? "M" : "L"}${x(a).toFixed(1)},${y(b).toFixed(1)}`)
      .join("");
    return `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`;
  });
  const xLabels = xTickValues.map((v) => String(+v.toPrecision(4)));
  return svg(
    frame(title, xLabel, yLabel, xLabels, xTickValues.map(x), yTickValues, y) +
      marks.join("") +
      legend(series.map((s) => s.label)),
  );
}

/** Bars for each group (e.g. P50, P90, P99), one bar per series within a group. */
export function groupedBars(
  title: string,
  yLabel: string,
  groups: readonly string[],
  series: readonly { label: string; values: number[] }[],
): string {
  const yTickValues = ticks(Math.max(0, ...series.flatMap((s) => s.values)));
  const yMax = yTickValues[yTickValues.length - 1];
  const y = (v: number) => H - M.bottom - (v / yMax) * (H - M.top - M.bottom);
  const groupWidth = (W - M.left - M.right) / groups.length;
  const barWidth = (groupWidth * 0.8) / series.length;
  const centers = groups.map((_, g) => M.left + groupWidth * (g + 0.5));
  const bars = series.flatMap((s, i) =>
    s.values.map((v, g) => {
      const left = M.left + groupWidth * g + groupWidth * 0.1 + barWidth * i;
      return `<rect x="${left.toFixed(1)}" y="${y(v).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${palette[i % palette.length]}"/>`;
    }),
  );
  return svg(
    frame(title, "", yLabel, [...groups], centers, yTickValues, y) +
      bars.join("") +
      legend(series.map((s) => s.label)),
  );
}

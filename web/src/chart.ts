import { html } from "htm/preact";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

const height = 170;

/**
 * One uPlot chart over a sliding x window [from, to] (engine seconds, labelled as seconds before `to`), created
 * once and given new data at each snapshot: uPlot redraws its canvas without rebuilding anything.
 */
export function Chart({
  title,
  series,
  data,
  from,
  to,
  y = {},
  yAxis = {},
}: {
  title: string;
  series: uPlot.Series[];
  data: (number | null)[][];
  from: number;
  to: number;
  y?: uPlot.Scale;
  yAxis?: uPlot.Axis;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const now = useRef(to);
  now.current = to;

  useEffect(() => {
    const element = box.current as HTMLDivElement;
    const chart = new uPlot(
      {
        width: element.clientWidth,
        height,
        series: [
          { label: "time", value: (_u, v) => (v == null ? "-" : `${(v - now.current).toFixed(1)} s`) },
          ...series,
        ],
        scales: { x: { time: false }, y },
        axes: [
          { values: (_u, ticks) => ticks.map((t) => `${Math.round(t - now.current)} s`) },
          { size: 60, ...yAxis },
        ],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
      },
      data as uPlot.AlignedData,
      element,
    );
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: element.clientWidth, height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [series, y, yAxis]);

  useEffect(() => {
    const chart = plot.current;
    if (!chart) return;
    chart.batch(() => {
      chart.setData(data as uPlot.AlignedData);
      chart.setScale("x", { min: from, max: to });
    });
  }, [data, from, to]);

  return html`<figure class="chart"><figcaption>${title}</figcaption><div ref=${box}></div></figure>`;
}

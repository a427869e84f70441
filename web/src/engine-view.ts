import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import type { EngineSnapshot, RequestView } from "../../src/engine/engine-snapshot.js";
import { apiFetch, sseData } from "./api.js";
import { BlockMap } from "./block-map.js";
import { Chart } from "./chart.js";
import { decodeColour, prefillColour, requestColour } from "./colours.js";
import { EngineHistory, rateSeconds, windowSeconds } from "./history.js";

/** Seconds to wait before reconnecting a stream that ended or failed. */
const retrySeconds = 2;

const stepped = uPlot.paths.stepped?.({ align: 1 });

/** Prefill drawn over prefill + decode: the visible top band is the decode tokens. */
const batchSeries: uPlot.Series[] = [
  {
    label: "decode tokens",
    stroke: decodeColour,
    fill: `${decodeColour}88`,
    paths: stepped,
    value: (u, v, _s, i) => (v == null || i == null ? "-" : String(v - (u.data[2][i] ?? 0))),
  },
  { label: "prefill tokens", stroke: prefillColour, fill: `${prefillColour}aa`, paths: stepped },
  { label: "token budget", stroke: "#555", dash: [6, 4], points: { show: false } },
];
/** arcsinh: a step of 8 decodes and the budget of 2048 are both readable. */
const batchScale: uPlot.Scale = { distr: 4, asinh: 1, range: (_u, _min, max) => [0, max] };
const batchAxis: uPlot.Axis = {
  splits: (_u, _axis, _min, max) => [0, 1, 10, 100, 1000, 10_000, 100_000].filter((v) => v <= max),
};

const throughputSeries: uPlot.Series[] = [
  {
    label: "prefill tokens/s",
    stroke: prefillColour,
    width: 2,
    value: (_u, v) => (v == null ? "-" : v.toFixed(0)),
  },
  {
    label: "decode tokens/s",
    stroke: decodeColour,
    width: 2,
    value: (_u, v) => (v == null ? "-" : v.toFixed(0)),
  },
];

const latencySeries: uPlot.Series[] = [
  {
    label: "TTFT ms",
    stroke: "#9b59b6",
    paths: () => null,
    points: { show: true, size: 5, fill: "#9b59b6" },
  },
  {
    label: "TPOT ms",
    stroke: "#16a085",
    paths: () => null,
    points: { show: true, size: 5, fill: "#16a085" },
  },
];
const latencyScale: uPlot.Scale = { distr: 3 };
const throughputScale: uPlot.Scale = { range: (_u, _min, max) => [0, Math.max(max * 1.1, 1)] };

/** The latest snapshot and the history of all of them, from /v1/engine/events while this view is open. */
function useEngineEvents(apiKey: string) {
  const history = useRef(new EngineHistory());
  const [snapshot, setSnapshot] = useState<EngineSnapshot>();
  const [status, setStatus] = useState("connecting");
  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    (async () => {
      while (!signal.aborted) {
        try {
          const response = await apiFetch("/v1/engine/events", apiKey, { signal });
          setStatus("live");
          for await (const data of sseData(response)) {
            const next: EngineSnapshot = JSON.parse(data);
            history.current.add(next);
            setSnapshot(next);
          }
          setStatus("disconnected");
        } catch (err) {
          if (signal.aborted) return;
          setStatus(`disconnected: ${(err as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, retrySeconds * 1000));
      }
    })();
    return () => controller.abort();
  }, [apiKey]);
  return { snapshot, history: history.current, status };
}

function Queue({
  title,
  testId,
  requests,
  total,
  detail,
}: {
  title: string;
  testId: string;
  requests: RequestView[];
  total: number;
  detail: (r: RequestView) => string;
}) {
  return html`
    <div class="queue">
      <h3>${title} <b data-testid=${testId}>${total}</b></h3>
      <ul>
        ${requests.map(
          (r) => html`<li title=${r.id}>
            <i style="background: ${requestColour(r.id)}"></i><span class="id">${r.id}</span>
            <span class="muted">${detail(r)}</span>
          </li>`,
        )}
        ${total > requests.length && html`<li class="muted">… ${total - requests.length} more</li>`}
      </ul>
    </div>
  `;
}

/** The engine, live: the KV cache's blocks, the queues, each step's batch, throughput and latencies. */
export function EngineView({ apiKey }: { apiKey: string }) {
  const { snapshot: s, history, status } = useEngineEvents(apiKey);
  if (s === undefined) return html`<p class="hint">${status}</p>`;
  const from = s.time - windowSeconds;
  const budget = history.steps[0].map(() => s.config.maxNumBatchedTokens);
  return html`
    <div class="engine">
      <div class="summary">
        <span class="status">${status}</span>
        <span>running <b data-testid="running-count">${s.running.length}</b> / ${s.config.maxNumSeqs}</span>
        <span>waiting <b>${s.numWaiting}</b></span>
        <span>preempted <b>${s.numPreempted}</b></span>
        <span>block size <b>${s.config.blockSize}</b> tokens</span>
        <span>token budget <b>${s.config.maxNumBatchedTokens}</b> per step</span>
      </div>
      <section class="panel">
        <h2>KV cache blocks</h2>
        <${BlockMap} blocks=${s.blocks} running=${s.running} />
      </section>
      <section class="panel queues">
        <${Queue} title="Running" testId="queue-running" requests=${s.running} total=${s.running.length}
          detail=${(r: RequestView) => `${r.computedTokens}/${r.promptTokens + r.outputTokens} tokens · ${r.blocks} blocks`} />
        <${Queue} title="Waiting" testId="queue-waiting" requests=${s.waiting} total=${s.numWaiting}
          detail=${(r: RequestView) => `${r.promptTokens} prompt tokens`} />
        <${Queue} title="Preempted" testId="queue-preempted" requests=${s.preempted} total=${s.numPreempted}
          detail=${(r: RequestView) => `${r.promptTokens + r.outputTokens} tokens to recompute · preempted ${r.preemptions}×`} />
      </section>
      <section class="panel charts">
        <${Chart} title="Batch per step: prefill and decode tokens, and the budget" series=${batchSeries}
          y=${batchScale} yAxis=${batchAxis} data=${[history.steps[0], history.steps[2], history.steps[1], budget]} from=${from} to=${s.time} />
        <${Chart} title="Throughput (mean of the last ${rateSeconds} s)" series=${throughputSeries} y=${throughputScale} data=${history.throughput}
          from=${from} to=${s.time} />
        <${Chart} title="TTFT and TPOT of finished requests" series=${latencySeries} y=${latencyScale}
          data=${history.latency} from=${from} to=${s.time} />
      </section>
    </div>
  `;
}

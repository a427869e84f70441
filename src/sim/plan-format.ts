import type { Plan, PlanInput, StepFloor } from "./plan.js";
import { weightDtypes } from "./types.js";

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
const ms = (s: number) => `${(s * 1e3).toFixed(2)} ms`;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const int = (n: number) => n.toLocaleString("en-US");
const floor = (f: StepFloor) =>
  `${ms(f.timeS)}, ${f.bound}-bound (memory ${ms(f.memoryTimeS)}, compute ${ms(f.computeTimeS)})`;

/** The plan as a table: exact figures from the model's shapes beside the textbook's back-of-envelope ones. */
export function formatPlan(input: PlanInput, plan: Plan): string {
  const b = plan.backOfEnvelope;
  const hw = input.hardware;
  const rows: [string, string, string][] = [
    ["parameters", `${(plan.params / 1e9).toFixed(2)} B`, ""],
    [
      `weights (${input.weightDtype})`,
      `${gb(plan.weightBytes)} (${gib(plan.weightBytes)})`,
      `${b.weightsGB} GB`,
    ],
    [
      `KV cache per token (${input.kvDtype})`,
      `${int(plan.kvBytesPerToken)} B = ${(plan.kvBytesPerToken / 2 ** 20).toFixed(3)} MiB`,
      `${b.kvMBPerToken} MB`,
    ],
    [
      `KV per ${int(input.maxModelLen)}-token request`,
      `${gb(plan.kvBytesPerMaxRequest)} (${gib(plan.kvBytesPerMaxRequest)})`,
      `${b.requestGB} GB`,
    ],
    ["device memory", `${gb(plan.memoryBytes)} (${gib(plan.memoryBytes)})`, `${b.memoryGB} GB`],
    [
      `left for KV (after ${gb(input.overheadBytes)} overhead)`,
      `${gb(plan.kvBudgetBytes)} (${gib(plan.kvBudgetBytes)})`,
      `${b.leftGB} GB`,
    ],
    [
      `max requests, preallocated to ${int(input.maxModelLen)}`,
      `${int(plan.preallocated.maxRequests)} (waste ${pct(plan.preallocated.waste)} at ${int(input.avgTokens)} tokens)`,
      `${b.preallocatedRequests}`,
    ],
    [
      `max requests, paged at ${int(input.avgTokens)} tokens`,
      `${int(plan.paged.maxRequests)} (${plan.paged.blocksPerRequest} blocks of ${input.blockSize} each; waste ${pct(plan.paged.waste)})`,
      `${b.pagedRequests}`,
    ],
    [
      `decode step floor, 1 request at ${int(input.contextTokens)} tokens`,
      floor(plan.decodeFloor),
      `${b.decodeFloorMs.toFixed(2)} ms at ${b.bandwidthTBps} TB/s`,
    ],
    [
      `decode step, ${int(plan.paged.maxRequests)} paged requests`,
      `${floor(plan.batchedDecode)}; ${int(Math.round(plan.batchedDecode.tokensPerS))} tokens/s`,
      "",
    ],
    [`prefill of ${int(input.promptTokens)} tokens`, floor(plan.prefill), ""],
    [
      "longest sequence that fits",
      `${int(plan.longestSequence)} tokens${plan.longestSequence < input.model.config.maxSeqLen ? ` (less than the model's ${int(input.model.config.maxSeqLen)})` : ""}`,
      "",
    ],
  ];
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = [
    `${input.model.name} on ${hw.description} (${gb(hw.memoryBytes)}, ${(hw.bandwidthBytesPerS / 1e12).toFixed(3)} TB/s)`,
    "",
    `${"".padEnd(widths[0])}  ${"exact (from the shapes)".padEnd(widths[1])}  back-of-envelope`,
    ...rows.map(([name, exact, rough]) => `${name.padEnd(widths[0])}  ${exact.padEnd(widths[1])}  ${rough}`),
    "",
    `longest sequence by weight dtype: ${weightDtypes
      .map((d) => {
        const n = plan.longestSequenceByDtype[d];
        return `${d} ${n === null ? "does not fit" : `${int(n)} tokens`}`;
      })
      .join(", ")}`,
    "",
    "Units: GB/MB/TB are decimal (1 GB = 1e9 B), GiB/MiB binary; device memory is the data sheet's (80 GB = 80 GiB).",
    "Exact: parameters counted from the shapes, int8/int4 as GGUF q8_0/q4_0 (8.5/4.5 bits per weight), counts rounded down;",
    "  roofline: time = max(bytes ÷ bandwidth, FLOPs ÷ peak).",
    "Back-of-envelope: the size in the model's name, 4/2/1/0.5 bytes per weight, each figure rounded to 0.1 of its unit",
    "  before the next uses it, counts rounded down: the textbook's arithmetic, kept to show where its round numbers come from.",
  ];
  return lines.join("\n");
}

import { writeFileSync } from "node:fs";
import type { EngineConfig } from "../engine/engine-config.js";
import { InputError } from "../model/errors.js";
import type { CostModel } from "../sim/cost-model.js";
import { simulateFleet } from "../sim/fleet.js";
import { type FleetRow, fleetRow, formatFleet } from "../sim/fleet-report.js";
import { type RouterName, routerNames } from "../sim/routers.js";
import { type Workload, workloadMetadata } from "../workload/workload.js";

/** The Inference Extension's endpoint picker refreshes metrics every 50 ms by default. */
export const defaultScrapeIntervalMs = 50;

export interface FleetFlags {
  replicas: number;
  router?: string;
  scrapeInterval?: string;
  resultJson?: string;
}

/** `simulate --replicas N`: the workload through N replicas once per router and scrape interval, as one table. */
export function runFleet(
  f: FleetFlags,
  setup: { engine: EngineConfig; cost: CostModel; title: string; workload: Workload; metadata: object },
): void {
  const routers = parseRouters(f.router ?? routerNames.join(","));
  const intervals = parseIntervals(f.scrapeInterval ?? String(defaultScrapeIntervalMs));
  const { engine, cost, workload } = setup;
  const rows: FleetRow[] = [];
  for (const name of routers) {
    // round-robin reads no metrics: the interval would change nothing.
    for (const ms of name === "round-robin" ? intervals.slice(0, 1) : intervals) {
      const run = simulateFleet({
        ...workload,
        replicas: f.replicas,
        router: name,
        scrapeInterval: ms / 1000,
        engine,
        stepTime: (output) => cost.stepTime(output),
      });
      rows.push(fleetRow(name, ms, run));
    }
  }
  process.stdout.write(`${formatFleet(setup.title, rows)}\n`);
  if (f.resultJson) {
    const json = { ...setup.metadata, replicas: f.replicas, ...workloadMetadata(workload), routers: rows };
    writeFileSync(f.resultJson, `${JSON.stringify(json, null, 2)}\n`);
  }
}

function parseRouters(value: string): RouterName[] {
  return value.split(",").map((name) => {
    if (!routerNames.includes(name as RouterName))
      throw new InputError(
        `--router must be one or more of ${routerNames.join(", ")} (comma-separated), got "${name}"`,
      );
    return name as RouterName;
  });
}

/** Milliseconds, each a number ≥ 0 or inf (never after the first). */
function parseIntervals(value: string): number[] {
  return value.split(",").map((item) => {
    const ms = item === "inf" ? Number.POSITIVE_INFINITY : Number(item);
    if (item.trim() === "" || !(ms >= 0))
      throw new InputError(
        `--scrape-interval must be milliseconds ≥ 0 or inf (comma-separated), got "${item}"`,
      );
    return ms;
  });
}

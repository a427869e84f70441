import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/**
 * Physical cores of this machine: the default thread count, since two threads on one core's SMT siblings
 * share its vector units and gain nothing on bandwidth-bound kernels. Linux: distinct (physical id, core id)
 * pairs in /proc/cpuinfo; elsewhere, or when the file says nothing, the logical CPU count.
 */
export function physicalCores(): number {
  try {
    const cores = new Set<string>();
    for (const cpu of readFileSync("/proc/cpuinfo", "utf8").split("\n\n")) {
      const physical = /^physical id\s*:\s*(\d+)/m.exec(cpu)?.[1];
      const core = /^core id\s*:\s*(\d+)/m.exec(cpu)?.[1];
      if (physical !== undefined && core !== undefined) cores.add(`${physical}:${core}`);
    }
    if (cores.size > 0) return Math.min(cores.size, availableParallelism());
  } catch {
    // not Linux: fall through
  }
  return availableParallelism();
}

/**
 * How much memory this process may still use, as the KV cache sizing (core/kv-cache-sizing.ts) takes it: free
 * memory from the OS, and the limit of the process's cgroup, which containers set and os.freemem() ignores.
 */
import { readFileSync } from "node:fs";
import { freemem } from "node:os";
import { join } from "node:path";
import type { MemoryView } from "../core/kv-cache-sizing.js";

/** Where each cgroup version keeps the limit, the usage, and (in memory.stat) the page cache it can drop. */
const cgroupFiles = {
  v2: { limit: "memory.max", usage: "memory.current", inactiveFile: "inactive_file" },
  v1: { limit: "memory.limit_in_bytes", usage: "memory.usage_in_bytes", inactiveFile: "total_inactive_file" },
};

export function readMemoryView(): MemoryView {
  const cgroup = cgroupMemory(readText("/proc/self/cgroup") ?? "", "/sys/fs/cgroup", readText);
  return cgroup ? { freeBytes: freemem(), cgroup } : { freeBytes: freemem() };
}

/**
 * The limit and usage of the memory cgroup that `procSelfCgroup` (the text of /proc/self/cgroup) names, read
 * with `read` under `root`: the unified hierarchy's ("0::/path") or the v1 memory controller's ("N:memory:/path"),
 * the first that sets a limit. Undefined when none does ("max") or the files cannot be read. The usage leaves out
 * the inactive page cache, which the kernel drops before it runs out (the "working set" of container tools).
 */
export function cgroupMemory(
  procSelfCgroup: string,
  root: string,
  read: (path: string) => string | undefined,
): MemoryView["cgroup"] {
  for (const line of procSelfCgroup.split("\n")) {
    const [, controllers, ...path] = line.split(":");
    const files =
      controllers === ""
        ? cgroupFiles.v2
        : controllers?.split(",").includes("memory")
          ? cgroupFiles.v1
          : undefined;
    if (!files || path.length === 0) continue;
    const dir = join(root, files === cgroupFiles.v1 ? "memory" : "", path.join(":"));
    const limit = Number(read(join(dir, files.limit))?.trim());
    const usage = Number(read(join(dir, files.usage))?.trim());
    if (!Number.isFinite(limit) || !Number.isFinite(usage)) continue;
    const stat = read(join(dir, "memory.stat")) ?? "";
    const inactiveFile = Number(new RegExp(`^${files.inactiveFile} (\\d+)$`, "m").exec(stat)?.[1] ?? 0);
    return { limitBytes: limit, usedBytes: Math.max(0, usage - inactiveFile) };
  }
  return undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

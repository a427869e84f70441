/**
 * How many KV cache blocks a memory budget buys, and the one line that tells the user. The budget comes
 * from --kv-cache-memory, or from a fraction of the memory left: the caller measures memory (os.freemem() and
 * the cgroup's files, outside core/) and passes the numbers in.
 */

export type KvCacheDtype = "f32" | "f16";
export const kvCacheDtypes: readonly KvCacheDtype[] = ["f32", "f16"];

const DTYPE_BYTES: Record<KvCacheDtype, number> = { f32: 4, f16: 2 };

/** The model dimensions the KV cache size depends on (a ModelConfig has them). */
export interface KvCacheShape {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
}

/** K and V, every layer: 2 × layers × kvHeads × headDim × bytes per element. */
export function kvBytesPerToken(shape: KvCacheShape, dtype: KvCacheDtype): number {
  return 2 * shape.nLayers * shape.nKvHeads * shape.headDim * DTYPE_BYTES[dtype];
}

const UNIT_BYTES: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};

/**
 * Parses "4GiB", "512MiB", "1.5GB" or a plain byte count "1073741824". KB/MB/GB are decimal, KiB/MiB/GiB
 * binary; units are case-insensitive.
 */
export function parseByteSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const multiplier = m ? UNIT_BYTES[(m[2] || "B").toUpperCase()] : undefined;
  if (!m || multiplier === undefined) {
    throw new Error(
      `invalid memory size "${text}": expected bytes or a number with B, KB, MB, GB, KiB, MiB, GiB…`,
    );
  }
  const bytes = Math.floor(Number(m[1]) * multiplier);
  if (bytes < 1) throw new Error(`invalid memory size "${text}": must be at least 1 byte`);
  return bytes;
}

/** Memory as the machine reports it, measured once the backend holds its weights. */
export interface MemoryView {
  /** os.freemem(): Linux's MemAvailable, which counts the page cache, mapped weights included, as free. */
  freeBytes: number;
  /** The process's cgroup memory limit and what it holds (page cache it can drop left out), when it has one. */
  cgroup?: { limitBytes: number; usedBytes: number };
}

export interface KvBudget {
  bytes: number;
  /** How the budget was derived, for the startup line: "30% of (11.2 GiB free − 3.9 GiB of mapped weights)". */
  derivation: string;
}

/**
 * The KV budget when none is given: `fraction` of the memory left for it. That is the free memory, or what
 * the cgroup limit leaves when that is less, minus the weights that will become resident: those the backend
 * reads in place from a memory-mapped file (`mappedWeightBytes`), which free memory counts as free until they
 * are read. Weights already copied into process memory are out of the free figure already.
 */
export function defaultKvBudget(memory: MemoryView, mappedWeightBytes: number, fraction: number): KvBudget {
  if (!(fraction > 0 && fraction <= 1))
    throw new RangeError(`invalid memory fraction ${fraction}: must be in (0, 1]`);
  const cgroup = memory.cgroup;
  const underLimit = cgroup ? Math.max(0, cgroup.limitBytes - cgroup.usedBytes) : Infinity;
  const available = Math.min(memory.freeBytes, underLimit);
  const where =
    cgroup && underLimit < memory.freeBytes
      ? `${formatBytes(available)} left under the cgroup limit of ${formatBytes(cgroup.limitBytes)}`
      : `${formatBytes(available)} free`;
  const bytes = Math.floor(fraction * (available - mappedWeightBytes));
  if (bytes < 1) {
    throw new RangeError(
      `no memory left for the KV cache: ${where}, and the model's memory-mapped weights need ${formatBytes(mappedWeightBytes)}; ` +
        "set the budget with --kv-cache-memory if you know better",
    );
  }
  const percent = `${+(fraction * 100).toFixed(1)}%`;
  return {
    bytes,
    derivation: `${percent} of (${where} − ${formatBytes(mappedWeightBytes)} of mapped weights)`,
  };
}

/** Whole blocks (the null block included) that fit in budgetBytes; at least 2 are needed. */
export function numBlocksForBudget(budgetBytes: number, bytesPerToken: number, blockSize: number): number {
  const blockBytes = bytesPerToken * blockSize;
  const numBlocks = Math.floor(budgetBytes / blockBytes);
  if (numBlocks < 2) {
    throw new RangeError(
      `KV cache budget ${formatBytes(budgetBytes)} is too small: one block of ${blockSize} tokens takes ${formatBytes(blockBytes)} and at least 2 are needed`,
    );
  }
  return numBlocks;
}

export interface KvCacheSummaryInput {
  dtype: KvCacheDtype;
  /** The null block included. */
  numBlocks: number;
  blockSize: number;
  bytesPerToken: number;
  maxModelLen: number;
}

/**
 * e.g. "KV cache (f32): 12,336 tokens (771 blocks of 16), 32.0 KiB/token, 386.0 MiB; max concurrency 24.1x at
 * maxModelLen 512". Tokens, blocks and concurrency count the usable blocks (not the null block); the
 * bytes are the whole allocation. Concurrency = usable blocks / blocks of one maxModelLen request.
 */
export function kvCacheSummary(s: KvCacheSummaryInput): string {
  const usableBlocks = s.numBlocks - 1;
  const tokens = usableBlocks * s.blockSize;
  const totalBytes = s.numBlocks * s.blockSize * s.bytesPerToken;
  const concurrency = usableBlocks / Math.ceil(s.maxModelLen / s.blockSize);
  return (
    `KV cache (${s.dtype}): ${tokens.toLocaleString("en-US")} tokens (${usableBlocks.toLocaleString("en-US")} blocks of ${s.blockSize}), ` +
    `${formatBytes(s.bytesPerToken)}/token, ${formatBytes(totalBytes)}; ` +
    `max concurrency ${concurrency.toFixed(1)}x at maxModelLen ${s.maxModelLen}`
  );
}

/** Binary units with one decimal: "512 B", "1.3 KiB", "4.0 GiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

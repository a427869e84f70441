/** Memory sizes as people write and read them: "4GiB" in a flag, "4.0 GiB" in a message. */

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

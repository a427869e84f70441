import type { KvAllocation } from "../core/kv-cache-manager.js";
import { InputError } from "../model/errors.js";

/** The server settings a comparison varies: the baselines that measure what paging, batching and caching buy. */
export interface ServeSettings {
  kvAllocation: KvAllocation;
  batching: "continuous" | "static";
  prefixCaching: boolean;
}

export const defaultServeSettings: ServeSettings = {
  kvAllocation: "paged",
  batching: "continuous",
  prefixCaching: true,
};

export interface Variant {
  label: string;
  settings: ServeSettings;
}

const choices: Record<string, Record<string, Partial<ServeSettings>>> = {
  "kv-allocation": { paged: { kvAllocation: "paged" }, contiguous: { kvAllocation: "contiguous" } },
  batching: { continuous: { batching: "continuous" }, static: { batching: "static" } },
  "prefix-caching": { on: { prefixCaching: true }, off: { prefixCaching: false } },
};

/** Parses `--compare kv-allocation=paged,contiguous` into one variant per value, on top of `base`. */
export function parseCompare(spec: string, base: ServeSettings = defaultServeSettings): Variant[] {
  const m = /^([a-z-]+)=([a-z,]+)$/.exec(spec.trim());
  const options = m ? choices[m[1]] : undefined;
  if (!m || !options) {
    throw new InputError(
      `--compare "${spec}": expected SETTING=VALUE,VALUE with SETTING one of ${Object.entries(choices)
        .map(([k, v]) => `${k} (${Object.keys(v).join(", ")})`)
        .join(", ")}`,
    );
  }
  const values = m[2].split(",");
  if (values.length < 2) throw new InputError(`--compare "${spec}": give at least two values`);
  return values.map((value) => {
    const overrides = options[value];
    if (!overrides) {
      throw new InputError(
        `--compare "${spec}": ${m[1]} has no value "${value}" (values: ${Object.keys(options).join(", ")})`,
      );
    }
    return { label: `${m[1]}=${value}`, settings: { ...base, ...overrides } };
  });
}

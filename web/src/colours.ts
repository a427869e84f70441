/** A request's colour, the same in the block map and the queues, and stable while the request lives. */
export function requestColour(id: string): string {
  let hash = 2166136261;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 16777619);
  // The golden angle spreads consecutive hashes' hues far apart.
  const hue = Math.round(((hash >>> 0) * 137.508) % 360);
  return `hsl(${hue} 62% 52%)`;
}

export const freeColour = "#e9edf2";
export const evictableColour = "#b8c2cf";
export const prefillColour = "#e0803a";
export const decodeColour = "#3a7be0";

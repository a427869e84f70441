/** Colours given to requests so far, in the order the page first saw them. */
const assigned = new Map<string, string>();
/** Forget the oldest assignments past this many requests (the page runs for days). */
const remembered = 4096;

/**
 * A request's colour, the same in the block map and the queues while the request lives. Requests get hues in
 * the order the page first sees them, each a golden angle (137.5°) past the last, so neighbours look apart.
 */
export function requestColour(id: string): string {
  let colour = assigned.get(id);
  if (colour === undefined) {
    if (assigned.size >= remembered) assigned.clear();
    const n = assigned.size;
    colour = `hsl(${Math.round((n * 137.508) % 360)} 65% ${n % 2 === 0 ? 50 : 62}%)`;
    assigned.set(id, colour);
  }
  return colour;
}

/** The legend's swatch for "in use": a strip of the first request colours. */
export const inUseSwatch = "linear-gradient(90deg, hsl(0 65% 50%), hsl(137 65% 50%), hsl(275 65% 50%))";
export const freeColour = "#e9edf2";
export const evictableColour = "#b8c2cf";
export const prefillColour = "#e0803a";
export const decodeColour = "#3a7be0";

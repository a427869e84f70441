import { BinaryHeap } from "./binary-heap.js";

/** A queued candidate: merge symbol `right` into its left neighbour `left`. */
interface Candidate {
  left: number;
  right: number;
  priority: number;
  /** Combined length when queued; a different length later means a symbol changed and the candidate is stale. */
  size: number;
}

/**
 * Greedy BPE: repeatedly merge the adjacent pair of symbols with the lowest priority (ties: leftmost)
 * until no adjacent pair may merge. `pairPriority` says how early a pair merges, or undefined when it
 * may not merge at all. SentencePiece passes minus the merged piece's score, byte-level BPE the merge rank.
 *
 * This is llama.cpp's loop (llm_tokenizer_spm / llm_tokenizer_bpe), O(n log n):
 * - symbols live in arrays indexed by their original position: `text[i]`, and a doubly linked list
 *   through `prev[i]` / `next[i]` (-1 = none). A merge appends the right symbol's text to the left one and
 *   empties the right one, so symbol 0 is always the head of the list.
 * - candidates wait in a heap; after a merge only the two new neighbouring pairs are queued. A popped
 *   candidate whose symbols changed since it was queued is stale and skipped.
 */
export function mergeSymbols(
  symbols: readonly string[],
  pairPriority: (left: string, right: string) => number | undefined,
): string[] {
  const n = symbols.length;
  if (n === 0) return [];
  const text = symbols.slice();
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }

  const queue = new BinaryHeap<Candidate>(
    (a, b) => a.priority < b.priority || (a.priority === b.priority && a.left < b.left),
  );
  const tryQueue = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const priority = pairPriority(text[left], text[right]);
    if (priority === undefined) return;
    queue.push({ left, right, priority, size: text[left].length + text[right].length });
  };
  for (let i = 0; i + 1 < n; i++) tryQueue(i, i + 1);

  for (let c = queue.pop(); c !== undefined; c = queue.pop()) {
    const { left, right } = c;
    const stale =
      next[left] !== right ||
      text[left] === "" ||
      text[right] === "" ||
      text[left].length + text[right].length !== c.size;
    if (stale) continue;
    text[left] += text[right];
    text[right] = "";
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    tryQueue(prev[left], left);
    tryQueue(left, next[left]);
  }

  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(text[i]);
  return out;
}

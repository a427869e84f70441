/**
 * One matcher's next-token mask in memory both threads see: word 0 counts the masks published so far (the
 * grammar thread stores it last, with Atomics, so a reader that sees count k sees mask k whole), or holds
 * `stopped` once the grammar thread is gone; word 1 is 1 when some token is masked; the mask words follow.
 */
export type MaskSlot = SharedArrayBuffer;

const countWord = 0;
const maskedWord = 1;
const headerWords = 2;
/** Written by the engine when the grammar thread has stopped: no mask will come. */
const stopped = -1;

export function maskSlot(vocabSize: number): MaskSlot {
  return new SharedArrayBuffer((headerWords + Math.ceil(vocabSize / 32)) * 4);
}

/** The grammar thread's side: writes the mask, then its count, and wakes a waiting reader. */
export function publishMask(slot: MaskSlot, mask: Int32Array, vocabSize: number): void {
  const words = new Int32Array(slot);
  words.set(mask, headerWords);
  words[maskedWord] = masksSome(mask, vocabSize) ? 1 : 0;
  Atomics.add(words, countWord, 1);
  Atomics.notify(words, countWord);
}

/** Whether some id below `vocabSize` has its bit clear (bits past the vocabulary do not count). */
function masksSome(mask: Int32Array, vocabSize: number): boolean {
  const fullWords = vocabSize >> 5;
  for (let i = 0; i < fullWords; i++) if (mask[i] !== -1) return true;
  const tail = vocabSize & 31;
  const bits = -1 >>> (32 - tail);
  return tail !== 0 && (mask[fullWords] & bits) !== bits;
}

/** Node 20 has Atomics.waitAsync (V8 ≥ 8.7); TypeScript's ES2022 library does not declare it yet. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string };
  }
).waitAsync;

/** The engine's side of a slot: waits for mask `n`, reads it. */
export class MaskReader {
  private readonly words: Int32Array;

  constructor(slot: MaskSlot) {
    this.words = new Int32Array(slot);
  }

  /** Marks the slot as abandoned: waiters wake and throw. */
  stop(): void {
    Atomics.store(this.words, countWord, stopped);
    Atomics.notify(this.words, countWord);
  }

  /** Resolves once mask `n` (1-based) is published; rejects when the grammar thread has stopped. */
  async ready(n: number): Promise<void> {
    for (;;) {
      const count = Atomics.load(this.words, countWord);
      if (count === stopped) throw new Error("the grammar thread stopped");
      if (count >= n) return;
      const wait = waitAsync(this.words, countWord, count);
      if (wait.async) await wait.value;
    }
  }

  /** Blocks until mask `n` is published (at most `timeoutMs`), for a caller that did not await ready(). */
  waitSync(n: number, timeoutMs: number): void {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const count = Atomics.load(this.words, countWord);
      if (count === stopped) throw new Error("the grammar thread stopped");
      if (count >= n) return;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no grammar mask after ${timeoutMs} ms`);
      Atomics.wait(this.words, countWord, count, left);
    }
  }

  /** Copies the published mask into `bitmask`; true when some token is masked. */
  copyTo(bitmask: Int32Array): boolean {
    bitmask.set(this.words.subarray(headerWords, headerWords + bitmask.length));
    return this.words[maskedWord] === 1;
  }

  /** Whether the published mask allows `tokenId`. */
  allows(tokenId: number): boolean {
    return ((this.words[headerWords + (tokenId >> 5)] >>> (tokenId & 31)) & 1) === 1;
  }
}

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { appendBlockHashes, hashBlockTokens, NONE_HASH } from "../../src/core/block-hash.js";

const tokens = fc.array(fc.integer({ min: 0, max: 31_999 }), { minLength: 1, maxLength: 32 });

describe("hashBlockTokens", () => {
  it("matches sha256 of the documented serialization (computed independently with Python hashlib)", () => {
    // python: sha256(b"vellum-none-hash"), then sha256(parent + u32 count + i32 tokens + u32 #keys [+ u32 len + key])
    expect(NONE_HASH).toBe("b5418268e5270e3805fc8e6e5f971c5751ed5e37db331bd32c2f7496869a59a4");
    const first = hashBlockTokens(NONE_HASH, [1, 2, 3]);
    expect(first).toBe("bfb4c8dff67bec060d44a7de16427629f711d7ced4cd5f9e49575472cabb5dce");
    expect(hashBlockTokens(first, [-1, 31_999], ["salt"])).toBe(
      "a5a29a515446cbf523eb6dbec5e78f5ea4bb9e2242107d664d4ec175d10e531e",
    );
  });

  it("is deterministic", () => {
    fc.assert(
      fc.property(tokens, (t) => hashBlockTokens(NONE_HASH, t) === hashBlockTokens(NONE_HASH, [...t])),
    );
  });

  it("differs when any one token differs", () => {
    fc.assert(
      fc.property(tokens, fc.nat(), fc.integer({ min: 1, max: 1000 }), (t, at, delta) => {
        const changed = [...t];
        changed[at % t.length] += delta;
        expect(hashBlockTokens(NONE_HASH, changed)).not.toBe(hashBlockTokens(NONE_HASH, t));
      }),
    );
  });

  it("differs when the parent differs", () => {
    fc.assert(
      fc.property(tokens, tokens, tokens, (a, b, t) => {
        fc.pre(a.join() !== b.join());
        const parentA = hashBlockTokens(NONE_HASH, a);
        const parentB = hashBlockTokens(NONE_HASH, b);
        expect(hashBlockTokens(parentA, t)).not.toBe(hashBlockTokens(parentB, t));
      }),
    );
  });

  it("separates token boundaries and extra keys unambiguously", () => {
    expect(hashBlockTokens(NONE_HASH, [1, 2])).not.toBe(hashBlockTokens(NONE_HASH, [1, 2, 0]));
    expect(hashBlockTokens(NONE_HASH, [1], ["ab"])).not.toBe(hashBlockTokens(NONE_HASH, [1], ["a", "b"]));
    expect(hashBlockTokens(NONE_HASH, [1], [""])).not.toBe(hashBlockTokens(NONE_HASH, [1]));
    expect(hashBlockTokens(NONE_HASH, [1], ["x"])).not.toBe(hashBlockTokens(NONE_HASH, [1], ["y"]));
  });
});

describe("appendBlockHashes", () => {
  it("hashes each full block once, incrementally, as the chain of hashBlockTokens", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 511 }), { maxLength: 80 }),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 8 }),
        (all, growthSteps, blockSize) => {
          const incremental: string[] = [];
          let length = 0;
          for (const step of growthSteps) {
            length = Math.min(all.length, length + step);
            appendBlockHashes(incremental, all.slice(0, length), blockSize);
          }
          appendBlockHashes(incremental, all, blockSize);

          const expected: string[] = [];
          let parent = NONE_HASH;
          for (let start = 0; start + blockSize <= all.length; start += blockSize) {
            parent = hashBlockTokens(parent, all.slice(start, start + blockSize));
            expected.push(parent);
          }
          expect(incremental).toEqual(expected);
        },
      ),
    );
  });

  it("puts the cache salt on the first block, which changes every hash down the chain", () => {
    const t = Array.from({ length: 12 }, (_, i) => i);
    const plain: string[] = [];
    const salted: string[] = [];
    appendBlockHashes(plain, t, 4);
    appendBlockHashes(salted, t, 4, "tenant-a");
    expect(salted[0]).toBe(hashBlockTokens(NONE_HASH, [0, 1, 2, 3], ["tenant-a"]));
    expect(salted[1]).toBe(hashBlockTokens(salted[0], [4, 5, 6, 7]));
    for (let i = 0; i < 3; i++) expect(salted[i]).not.toBe(plain[i]);
  });
});

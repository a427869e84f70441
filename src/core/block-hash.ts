import { createHash } from "node:crypto";

/**
 * A full block's content address: sha256, as 64 hex digits, of (parent block's hash, the block's token
 * ids, extra keys). Chaining through the parent makes the hash name the whole prefix up to this block,
 * so equal hashes mean equal prefixes. A hit is trusted without comparing tokens: sha256 collisions
 * are not a practical risk, while a 64-bit hash would let one user's prompt alias another's.
 * Deterministic across runs and processes (no random seed).
 */
export type BlockHash = string;

/** The parent of a sequence's first block. */
export const NONE_HASH: BlockHash = createHash("sha256").update("vellum-none-hash").digest("hex");

/**
 * Bytes hashed, after the parent's 32 raw bytes (all integers u32/i32 little-endian, so no two inputs
 * serialize alike): token count, token ids, extra key count, then each key as byte length + UTF-8.
 */
export function hashBlockTokens(
  parent: BlockHash,
  tokenIds: readonly number[],
  extraKeys: readonly string[] = [],
): BlockHash {
  const tokens = Buffer.allocUnsafe(4 * (tokenIds.length + 2));
  tokens.writeUInt32LE(tokenIds.length, 0);
  for (let i = 0; i < tokenIds.length; i++) tokens.writeInt32LE(tokenIds[i], 4 * (i + 1));
  tokens.writeUInt32LE(extraKeys.length, 4 * (tokenIds.length + 1));
  const h = createHash("sha256").update(parent, "hex").update(tokens);
  for (const key of extraKeys) {
    const bytes = Buffer.from(key, "utf8");
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32LE(bytes.length, 0);
    h.update(length).update(bytes);
  }
  return h.digest("hex");
}

/**
 * Extends `hashes` (the hashes of the first hashes.length blocks of `tokenIds`) with the hashes of the
 * blocks that have filled since, so each block is hashed once over a sequence's life. A partial last
 * block is not hashed. `cacheSalt`, when given, is an extra key of the first block only: a different
 * salt changes every hash down the chain.
 */
export function appendBlockHashes(
  hashes: BlockHash[],
  tokenIds: readonly number[],
  blockSize: number,
  cacheSalt?: string,
): void {
  for (let start = hashes.length * blockSize; start + blockSize <= tokenIds.length; start += blockSize) {
    const parent = hashes.length === 0 ? NONE_HASH : hashes[hashes.length - 1];
    const extraKeys = hashes.length === 0 && cacheSalt !== undefined ? [cacheSalt] : [];
    hashes.push(hashBlockTokens(parent, tokenIds.slice(start, start + blockSize), extraKeys));
  }
}

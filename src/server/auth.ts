import { createHash, timingSafeEqual } from "node:crypto";

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * Served without the API key. Authentication is decided on the route the router matched, never on the
     * raw URL (which has many spellings of one path), and a request that matches no route needs the key.
     */
    public?: boolean;
  }
}

/**
 * Checks `Authorization: Bearer <key>` against `apiKey` in constant time: both keys are hashed to
 * SHA-256 digests of equal length and compared with timingSafeEqual, so the time taken says nothing about
 * how much of a guess was right, or about the key's length.
 */
export function bearerKeyCheck(apiKey: string): (authorization: string | undefined) => boolean {
  const expected = sha256(apiKey);
  return (authorization) => {
    const bearer = /^Bearer (.*)$/i.exec(authorization ?? "");
    const matches = timingSafeEqual(sha256(bearer?.[1] ?? ""), expected);
    return bearer !== null && matches;
  };
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

import { createServer } from "node:net";
import { InputError } from "../model/errors.js";

const reasons: Record<string, string> = {
  EADDRINUSE: "the port is in use",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EADDRNOTAVAIL: "the address is not one of this machine's",
  ENOTFOUND: "unknown host",
};

/** A listen error as one line naming the address (an InputError), or the error itself when unexpected. */
export function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as { code?: string }).code;
  const reason = code === undefined ? undefined : reasons[code];
  return reason === undefined ? err : new InputError(`cannot listen on ${host}:${port}: ${reason} (${code})`);
}

/**
 * Listens on the address and lets it go at once, so that a port in use is reported before a model loads for
 * minutes. (Another process may still take it in between; the real listen reports that the same way.)
 */
export async function checkCanListen(host: string, port: number): Promise<void> {
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once("error", reject);
      probe.listen({ host, port }, resolve);
    });
  } catch (err) {
    throw listenError(err, host, port);
  }
  await new Promise((resolve) => probe.close(resolve));
}

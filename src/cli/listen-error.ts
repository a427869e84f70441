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

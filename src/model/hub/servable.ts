/**
 * Whether vellum can serve a repository's model, learned before its weights are downloaded: a GGUF's header read
 * with HTTP range requests (architecture, sizes, every tensor's type, exactly as loading checks them), or a
 * safetensors checkpoint's config.json. The answer is one line; a model vellum cannot serve is refused.
 */

import { InputError } from "../errors.js";
import { ggufModelFromHeaders } from "../formats/gguf-model.js";
import { type GgufFile, GgufHeaderTruncated, parseGgufHeader } from "../formats/gguf-reader.js";
import { hfSpecFromJson, readJsonObject } from "../formats/hf-config.js";
import { describeTypeMix } from "../type-mix.js";
import type { HubRepo, RemoteFile } from "./hub-repo.js";

/** The first read of a header; it doubles until the header fits (a 150k-token vocabulary takes ~8 MB). */
const firstHeadBytes = 1 << 20;
const maxHeadBytes = 256 << 20;

/**
 * "llama, q4_k 7 tensors 1.5 MiB, …" for the GGUF whose files (a split model's shards, in order) are `files`, from
 * their headers alone; or an InputError saying why vellum cannot serve it.
 */
export async function checkRemoteGguf(
  hub: HubRepo,
  commit: string,
  files: readonly RemoteFile[],
): Promise<string> {
  const headers = [];
  for (const file of files) headers.push(await remoteHeader(hub, commit, file));
  try {
    const model = ggufModelFromHeaders(headers);
    return `${model.config.architecture}, ${describeTypeMix(model.tensors.values())}`;
  } catch (e) {
    throw refusal(`${hub.repo}/${files[0].path}`, e);
  }
}

/** A remote GGUF's header, read from its first bytes: as many as it takes. */
async function remoteHeader(hub: HubRepo, commit: string, file: RemoteFile): Promise<GgufFile> {
  const blob = await hub.open(commit, file);
  const name = `${hub.repo}/${file.path}`;
  let head = new Uint8Array(0);
  for (let want = Math.min(firstHeadBytes, file.size); ; want = Math.min(want * 2, file.size)) {
    const more = await hub.read(blob, head.length, want, file.path);
    const joined = new Uint8Array(head.length + more.length);
    joined.set(head);
    joined.set(more, head.length);
    head = joined;
    try {
      return parseGgufHeader(head, file.size, name);
    } catch (e) {
      if (!(e instanceof GgufHeaderTruncated)) throw refusal(name, e);
      if (want >= maxHeadBytes)
        throw new InputError(`${name}: the GGUF header is longer than ${maxHeadBytes} bytes`);
    }
  }
}

/** The checkpoint's architecture and torch dtype, or an InputError saying why vellum cannot serve the checkpoint whose config.json is at `path`. */
export function checkHfConfig(
  path: string,
  repo: string,
  listing: readonly string[],
): { architecture: string; dtype?: string } {
  try {
    const json = readJsonObject(path);
    const spec = hfSpecFromJson(json, `${repo}/config.json`);
    if (!listing.includes("tokenizer.json"))
      throw new InputError(`${repo} has no tokenizer.json, which vellum reads`);
    const dtype = json.torch_dtype ?? json.dtype;
    return { architecture: spec.config.architecture, dtype: typeof dtype === "string" ? dtype : undefined };
  } catch (e) {
    throw refusal(repo, e);
  }
}

function refusal(name: string, e: unknown): Error {
  if (!(e instanceof InputError)) return e as Error;
  return new InputError(`vellum cannot serve ${name}, so nothing more was downloaded: ${e.message}`);
}

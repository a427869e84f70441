/**
 * A model named on the Hugging Face Hub, as `--model` and `vellum pull` take it:
 *   hf:ORG/REPO            a safetensors repository, or a GGUF repository's default quant (as llama.cpp's -hf)
 *   hf:ORG/REPO:QUANT      a GGUF repository's file(s) of that quant tag (Q4_K_M, q8_0, …)
 *   hf:ORG/REPO/FILE.gguf  one GGUF file of the repository (the first shard of a split one), by its path
 */

import { InputError } from "../errors.js";

export interface HubRef {
  /** "ORG/REPO". */
  repo: string;
  /** The quant tag, upper-cased (llama.cpp matches it case-insensitively). */
  tag?: string;
  /** A file's path inside the repository. */
  file?: string;
}

const prefix = "hf:";
/** The Hub's rule for user and repository names. */
const namePart = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const tagPart = /^[A-Za-z0-9_]+$/;

export const isHubRef = (model: string): boolean => model.startsWith(prefix);

export function parseHubRef(text: string): HubRef {
  const bad = (why: string) =>
    new InputError(
      `${JSON.stringify(text)}: ${why}; expected hf:ORG/REPO, hf:ORG/REPO:QUANT or hf:ORG/REPO/FILE.gguf`,
    );
  if (!isHubRef(text)) throw bad(`does not start with "${prefix}"`);
  const [org, repoAndTag, ...rest] = text.slice(prefix.length).split("/");
  if (repoAndTag === undefined) throw bad("no repository name");
  if (rest.length > 0) {
    const file = rest.join("/");
    if (!file.endsWith(".gguf")) throw bad(`the file ${JSON.stringify(file)} is not a .gguf`);
    if (rest.some((part) => part === "" || part === "." || part === "..")) throw bad("a bad file path");
    if (!namePart.test(org) || !namePart.test(repoAndTag)) throw bad("a bad organisation or repository name");
    return { repo: `${org}/${repoAndTag}`, file };
  }
  const [name, tag, ...more] = repoAndTag.split(":");
  if (!namePart.test(org) || !namePart.test(name)) throw bad("a bad organisation or repository name");
  if (tag === undefined) return { repo: `${org}/${name}` };
  if (more.length > 0 || !tagPart.test(tag)) throw bad(`a bad quant tag ${JSON.stringify(tag)}`);
  return { repo: `${org}/${name}`, tag: tag.toUpperCase() };
}

export function formatHubRef(ref: HubRef): string {
  if (ref.file) return `${prefix}${ref.repo}/${ref.file}`;
  return ref.tag ? `${prefix}${ref.repo}:${ref.tag}` : `${prefix}${ref.repo}`;
}

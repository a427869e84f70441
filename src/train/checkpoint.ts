/**
 * Training checkpoints: the step reached, every parameter and both Adam moments, so a run resumes exactly.
 *
 * File layout: "VLMCKPT1", a uint32 length, a JSON header { step, tensors: [{ name, length }] }, then for each
 * tensor in header order its values, Adam m and Adam v as little-endian float32. Written to a temporary file
 * and renamed, so a run killed mid-write leaves the previous checkpoint intact.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { fileErrorText, InputError, quoteFileString, showFileValue } from "../model/errors.js";
import type { AdamWState } from "./adamw.js";
import type { Vec } from "./compute.js";
import type { ParamSet } from "./params.js";

const MAGIC = "VLMCKPT1";

export function saveCheckpoint(path: string, params: ParamSet, adam: AdamWState) {
  const list = [...params.values()];
  const header = Buffer.from(
    JSON.stringify({ step: adam.step, tensors: list.map((p) => ({ name: p.name, length: p.value.length })) }),
  );
  const parts: Buffer[] = [Buffer.from(MAGIC), Buffer.alloc(4), header];
  parts[1].writeUInt32LE(header.length);
  const f32 = (v: Vec) => Buffer.from(Float32Array.from(v).buffer);
  for (const p of list)
    parts.push(f32(p.value), f32(adam.m.get(p.name) as Vec), f32(adam.v.get(p.name) as Vec));
  writeFileSync(`${path}.tmp`, Buffer.concat(parts));
  renameSync(`${path}.tmp`, path);
}

/** Loads a checkpoint into params and adam (which must have the same tensors); false when there is none. */
export function loadCheckpoint(path: string, params: ParamSet, adam: AdamWState): boolean {
  if (!existsSync(path)) return false;
  const buf = readFileSync(path);
  if (buf.subarray(0, 8).toString() !== MAGIC)
    throw new InputError(`${path}: not a vellum training checkpoint`);
  const headerLength = buf.readUInt32LE(8);
  let header: { step: number; tensors: { name: string; length: number }[] };
  try {
    header = JSON.parse(buf.subarray(12, 12 + headerLength).toString());
  } catch (e) {
    throw new InputError(`${path}: header is not valid JSON: ${fileErrorText(e)}`);
  }
  let offset = 12 + headerLength;
  const read = (into: Vec, name: string) => {
    const bytes = into.length * 4;
    if (offset + bytes > buf.length)
      throw new InputError(`${path}: truncated at byte ${offset} (tensor ${quoteFileString(name)})`);
    into.set(new Float32Array(buf.buffer.slice(buf.byteOffset + offset, buf.byteOffset + offset + bytes)));
    offset += bytes;
  };
  for (const t of header.tensors) {
    const p = params.get(t.name);
    if (!p || p.value.length !== t.length) {
      throw new InputError(
        `${path}: tensor ${showFileValue(t.name)} (${showFileValue(t.length)} values) does not match the configured model`,
      );
    }
    read(p.value, t.name);
    read(adam.m.get(t.name) as Vec, t.name);
    read(adam.v.get(t.name) as Vec, t.name);
  }
  if (header.tensors.length !== params.size)
    throw new InputError(`${path}: holds ${header.tensors.length} tensors, the model has ${params.size}`);
  adam.step = header.step;
  return true;
}

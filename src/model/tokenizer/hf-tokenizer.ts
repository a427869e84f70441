import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { Tokenizer as HfJsTokenizer } from "@huggingface/tokenizers";
import { fileErrorText, InputError } from "../errors.js";
import { endOfGenerationIds } from "./end-of-generation.js";
import { configTokenText, type HfTokenizerConfig } from "./hf-convert.js";
import { SpecialTokenSplitter } from "./special-tokens.js";
import { checkTokenId } from "./token-bytes.js";
import {
  type EncodeOptions,
  type TextPart,
  type Tokenizer,
  type TokenizerRecipe,
  textParts,
} from "./tokenizer.js";

export {
  type HfTokenizerConfig,
  tokenizerConfigFromVocab,
  tokenizerJsonFromVocab,
  vocabFromTokenizerJson,
} from "./hf-convert.js";

/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) run by @huggingface/tokenizers, behind
 * vellum's Tokenizer interface. BOS/EOS are added by tokenizer.json's post-processor, as in HF; the
 * config supplies the BOS/EOS names, the chat template and clean_up_tokenization_spaces.
 *
 * Special added tokens (`special: true`) are the control tokens: text that must not yield them (a part
 * with `parseSpecial` false) goes through a second instance of the library, built lazily, in which each
 * special added token is spelled as an unguessable private-use string instead of its own text. The parts
 * that do parse special tokens get their special-token text rewritten to those spellings; the rest keeps its
 * text, which that instance does not know as added tokens. Section splitting, lstrip/rstrip, normalizers
 * and the post-processor stay the library's own, so text without special tokens gets the same ids.
 */
export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly stopIds: readonly number[];
  readonly recipe: Extract<TokenizerRecipe, { kind: "hf" }>;
  /** The Jinja chat template, if the model has one. */
  readonly chatTemplate: string | undefined;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  private readonly hf: HfJsTokenizer;
  /** All added tokens, the special ones as control tokens. */
  private readonly addedTokens: SpecialTokenSplitter;
  private respelled: RespelledTokenizer | undefined;

  /**
   * `extraStopIds` are further end-of-generation ids (generation_config.json's eos_token_id list);
   * `source` names the files for error messages.
   */
  constructor(
    json: object,
    config: HfTokenizerConfig,
    source = "tokenizer.json",
    extraStopIds: number[] = [],
  ) {
    this.recipe = { kind: "hf", json, config, source, extraStopIds };
    try {
      this.hf = new HfJsTokenizer(json, config);
    } catch (e) {
      throw new InputError(`${source}: cannot build tokenizer: ${fileErrorText(e)}`);
    }
    this.addedTokens = new SpecialTokenSplitter(
      addedTokensOf(json).map((t) => ({ text: t.content, id: t.id, control: t.special === true })),
    );
    const tokens: string[] = [];
    for (const [text, id] of this.hf.get_vocab(true)) tokens[id] = text;
    this.vocabSize = tokens.length;
    this.bosToken = configTokenText(config.bos_token);
    this.eosToken = configTokenText(config.eos_token);
    this.bosId = this.bosToken === undefined ? undefined : this.hf.token_to_id(this.bosToken);
    this.eosId = this.eosToken === undefined ? undefined : this.hf.token_to_id(this.eosToken);
    this.stopIds = endOfGenerationIds(tokens, [this.eosId, ...extraStopIds]);
    this.chatTemplate = pickChatTemplate(config.chat_template);
  }

  encode(text: string | readonly TextPart[], opts?: EncodeOptions): number[] {
    const parts = textParts(text, opts?.parseSpecial);
    const options = { add_special_tokens: opts?.addSpecial ?? true };
    if (parts.every((p) => p.parseSpecial)) {
      return this.hf.encode(parts.map((p) => p.text).join(""), options).ids;
    }
    this.respelled ??= new RespelledTokenizer(this.recipe.json, this.recipe.config);
    const { hf, spellings } = this.respelled;
    const respell = (t: string) =>
      this.addedTokens
        .split(t)
        .map((s) => ("text" in s ? s.text : spellings.get(s.id)))
        .join("");
    return hf.encode(parts.map((p) => (p.parseSpecial ? respell(p.text) : p.text)).join(""), options).ids;
  }

  findSpecialText(text: string): string | undefined {
    return this.addedTokens.findControl(text);
  }

  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string {
    for (const id of ids) checkTokenId(id, this.vocabSize);
    // @huggingface/tokenizers rejects an empty list.
    if (ids.length === 0) return "";
    return this.hf.decode([...ids], { skip_special_tokens: opts?.skipSpecial ?? true });
  }

  idToToken(id: number): string {
    checkTokenId(id, this.vocabSize);
    const token = this.hf.id_to_token(id);
    if (token === undefined) throw new InputError(`token id ${id} has no vocabulary entry`);
    return token;
  }
}

type AddedToken = { id: number; content: string; special?: boolean };

function addedTokensOf(json: object): AddedToken[] {
  return (json as { added_tokens?: AddedToken[] }).added_tokens ?? [];
}

/** The library run with each special added token spelled as a private-use string (see HfTokenizer). */
class RespelledTokenizer {
  readonly hf: HfJsTokenizer;
  /** How each added token is written in the text this instance encodes. */
  readonly spellings = new Map<number, string>();

  constructor(json: object, config: HfTokenizerConfig) {
    // Random per instance, so that no user text can spell a special token this way.
    const nonce = randomBytes(8).toString("hex");
    const added = addedTokensOf(json).map((t) => {
      const spelling = t.special ? `\uE000${nonce}${t.id}\uE001` : t.content;
      this.spellings.set(t.id, spelling);
      return { ...t, content: spelling };
    });
    this.hf = new HfJsTokenizer({ ...json, added_tokens: added }, config);
    // The post-processor names BOS/EOS by their own text: keep it mapped to their ids.
    for (const t of addedTokensOf(json)) if (t.special) this.hf.model?.tokens_to_ids.set(t.content, t.id);
  }
}

/** What an HF tokenizer directory holds, read but not built. */
export interface HfTokenizerFiles {
  json: object;
  config: HfTokenizerConfig;
  /** The tokenizer.json path, for messages. */
  jsonPath: string;
  /** generation_config.json's eos_token_id list. */
  extraStopIds: number[];
  /** The chat template: tokenizer_config.json's, else chat_template.jinja's. */
  chatTemplate: string | undefined;
}

/**
 * Reads an HF tokenizer: tokenizer.json (required; `path` is its directory or the file itself), and beside
 * it tokenizer_config.json, chat_template.jinja (newer repositories keep the template there) and
 * generation_config.json (extra stop ids), when present.
 */
export function readHfTokenizerFiles(path: string): HfTokenizerFiles {
  const isFile = path.endsWith(".json") && existsSync(path) && statSync(path).isFile();
  const dir = isFile ? dirname(path) : path;
  const jsonPath = isFile ? path : join(dir, "tokenizer.json");
  const json = readJson(jsonPath, true) as object;
  const config = (readJson(join(dir, "tokenizer_config.json"), false) ?? {}) as HfTokenizerConfig;
  const templatePath = join(dir, "chat_template.jinja");
  if (config.chat_template === undefined && existsSync(templatePath)) {
    config.chat_template = readFileSync(templatePath, "utf8");
  }
  const generation = readJson(join(dir, "generation_config.json"), false) as
    | { eos_token_id?: unknown }
    | undefined;
  const eos = generation?.eos_token_id;
  const extraStopIds = (Array.isArray(eos) ? eos : [eos]).filter((id): id is number => Number.isInteger(id));
  return { json, config, jsonPath, extraStopIds, chatTemplate: pickChatTemplate(config.chat_template) };
}

/** Loads an HF tokenizer directory (see readHfTokenizerFiles). */
export function loadHfTokenizer(dir: string): HfTokenizer {
  const { json, config, jsonPath, extraStopIds } = readHfTokenizerFiles(dir);
  return new HfTokenizer(json, config, jsonPath, extraStopIds);
}

function readJson(path: string, required: boolean): unknown {
  if (!existsSync(path)) {
    if (required) throw new InputError(`${path}: file not found`);
    return undefined;
  }
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new InputError(`${path}: not valid JSON: ${fileErrorText(e)}`);
  }
}

/** tokenizer_config.json holds one template, or a list of named ones of which "default" is the chat one. */
function pickChatTemplate(value: HfTokenizerConfig["chat_template"]): string | undefined {
  if (typeof value === "string") return value;
  return value?.find((t) => t.name === "default")?.template;
}

import { InputError } from "../errors.js";
import { endOfGenerationIds, isEndOfGenerationText } from "./end-of-generation.js";
import { type SpecialToken, SpecialTokenSplitter, type TextSegment } from "./special-tokens.js";
import { checkTokenId, decodeByteChunks } from "./token-bytes.js";
import {
  type EncodeOptions,
  type TextPart,
  type Tokenizer,
  type TokenizerRecipe,
  TokenType,
  textParts,
  type VocabSpec,
} from "./tokenizer.js";

/** How one vocabulary entry reads: what it decodes to, and whether input text spelling it becomes it. */
export interface VocabEntry {
  bytes: Uint8Array;
  /** Set for a special token; a control one is matched only where special tokens are parsed, and decode drops it. */
  special?: { control: boolean };
}

/**
 * What the GGUF vocabulary tokenizers (SentencePiece-BPE and byte-level BPE) share: the ids, special-token
 * matching, BOS/EOS around the encoded text, and decode by joining each token's bytes. A subclass says
 * how each entry reads (`entryOf`) and how plain text between special tokens becomes ids.
 */
export abstract class VocabTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly stopIds: readonly number[];
  readonly recipe: TokenizerRecipe;
  private readonly tokens: readonly string[];
  private readonly tokenBytes: readonly Uint8Array[];
  /** Ids that decode drops unless `skipSpecial` is false. */
  private readonly controlIds = new Set<number>();
  private readonly specials: SpecialTokenSplitter;
  private readonly addBos: boolean;
  private readonly addEos: boolean;

  /**
   * `types` are the GGUF token types, one per token; a token whose text llama.cpp treats as end of generation
   * is a control token whatever its type, as in llama.cpp. `source` names the vocabulary's file for error
   * messages.
   */
  protected constructor(
    spec: VocabSpec,
    source: string,
    types: readonly number[],
    entryOf: (token: string, type: number) => VocabEntry,
  ) {
    const n = spec.tokens.length;
    if (n === 0) throw new InputError(`${source}: the tokenizer vocabulary is empty`);
    if (types.length !== n) throw new InputError(`${source}: ${types.length} token types for ${n} tokens`);
    this.vocabSize = n;
    this.recipe = { kind: "vocab", spec, source };
    this.tokens = spec.tokens;
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    this.stopIds = endOfGenerationIds(spec.tokens, [spec.eosId, ...(spec.eotIds ?? [])]);
    this.addBos = spec.addBos && spec.bosId !== undefined;
    this.addEos = spec.addEos && spec.eosId !== undefined;

    const specials: SpecialToken[] = [];
    const rstrip = new Set(spec.rstripIds);
    const lstrip = new Set(spec.lstripIds);
    this.tokenBytes = this.tokens.map((token, id) => {
      const entry = entryOf(token, isEndOfGenerationText(token) ? TokenType.control : types[id]);
      if (entry.special) {
        const { control } = entry.special;
        specials.push({ text: token, id, control, rstrip: rstrip.has(id), lstrip: lstrip.has(id) });
      }
      if (entry.special?.control) this.controlIds.add(id);
      return entry.bytes;
    });
    this.specials = new SpecialTokenSplitter(specials);
  }

  encode(text: string | readonly TextPart[], opts?: EncodeOptions): number[] {
    const addSpecial = opts?.addSpecial ?? true;
    const ids: number[] = [];
    if (addSpecial && this.addBos) ids.push(this.bosId as number);
    this.encodeSegments(this.specials.splitParts(textParts(text, opts?.parseSpecial)), ids);
    if (addSpecial && this.addEos) ids.push(this.eosId as number);
    return ids;
  }

  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string {
    const skipSpecial = opts?.skipSpecial ?? true;
    const chunks: Uint8Array[] = [];
    for (const id of ids) {
      checkTokenId(id, this.vocabSize);
      if (skipSpecial && this.controlIds.has(id)) continue;
      chunks.push(this.tokenBytes[id]);
    }
    return decodeByteChunks(chunks);
  }

  idToToken(id: number): string {
    checkTokenId(id, this.vocabSize);
    return this.tokens[id];
  }

  findSpecialText(text: string): string | undefined {
    return this.specials.findControl(text);
  }

  /** Appends the ids of the input, already split into special tokens and the plain text between them, to `out`. */
  protected abstract encodeSegments(segments: readonly TextSegment[], out: number[]): void;
}

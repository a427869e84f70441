/**
 * Structured outputs as the scheduler-side layers see them: a grammar already compiled for the model's
 * vocabulary (JSON schema, regex, choice, EBNF) that hands each request its own matcher. The engine builds
 * them (engine/structured-output, with XGrammar); the runner asks a request's matcher which tokens may come
 * next and applies that mask to the logits before sampling.
 */
export interface TokenGrammar {
  /** A matcher at the grammar's start: one per request (each of n completions gets its own). */
  createMatcher(): GrammarMatcher;
}

/** Where one request stands in its grammar. */
export interface GrammarMatcher {
  /**
   * Resolves once fillNextTokenBitmask and acceptToken can answer without waiting: the next mask may be
   * computed on another thread (the runner awaits this while the forward pass runs).
   */
  ready(): Promise<void>;
  /**
   * Writes the tokens allowed next into `bitmask`, one bit per token id (bit `t & 31` of word `t >> 5`,
   * set = allowed), `ceil(vocabSize / 32)` words. Returns false when every token is allowed, so the mask
   * need not be applied.
   */
  fillNextTokenBitmask(bitmask: Int32Array): boolean;
  /** Advances past a sampled token; false when the grammar does not accept it. */
  acceptToken(tokenId: number): boolean;
  /** The grammar accepted a stop token: nothing may follow. */
  isTerminated(): boolean;
  /** Frees what the matcher holds outside the JS heap. */
  dispose(): void;
}

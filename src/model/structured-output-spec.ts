/**
 * What a request constrains its output to, one kind at a time, as vLLM's `structured_outputs` names them.
 * Plain data: the server builds it from a request (`response_format`, `structured_outputs`, a forced tool
 * call) and the engine compiles it into a TokenGrammar for the model's vocabulary.
 */
export type StructuredOutputSpec =
  /** Valid JSON for this JSON Schema. */
  | { type: "json_schema"; schema: Record<string, unknown> }
  /** Any JSON object (OpenAI's `json_object`). */
  | { type: "json_object" }
  /** Text the regular expression matches whole. */
  | { type: "regex"; pattern: string }
  /** Exactly one of these strings. */
  | { type: "choice"; choices: readonly string[] }
  /** Text an EBNF grammar (XGrammar's dialect, which reads llama.cpp's GBNF) derives from its `root` rule. */
  | { type: "grammar"; grammar: string }
  /** XGrammar's structural tag (a JSON text): free text, with tagged regions constrained once triggered. */
  | { type: "structural_tag"; structuralTag: string };

/**
 * The ids that end generation, derived from the vocabulary as llama.cpp does it (llama_vocab::impl::load):
 * GGUF files name at most EOS, EOT and EOM, while chat models end a turn with tokens such as <|eot_id|>,
 * <|im_end|>, <end_of_turn> or <|end|>, so llama.cpp recognises them by their text. Serving stops on
 * every one of them, as llama.cpp's server does.
 */

/** Token texts llama.cpp treats as end of generation. */
const endOfGenerationTexts = new Set([
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
  "<|flush|>",
  "<|calls|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "</s>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "[EOS]",
  "<|end_of_text|>",
  "<end_of_utterance>",
  "<eos>",
  "<turn|>",
  "<|tool_response>",
  "<｜end▁of▁sentence｜>",
  "[e~[",
]);

/** Fill-in-the-middle pad, repository and file-separator tokens, which llama.cpp also counts as end of generation. */
const fimTexts = [
  ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
  ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
  ["<|file_sep|>"],
];

/**
 * EOS, then the ids the file names (EOT, EOM), then every token whose text llama.cpp treats as end of
 * generation, without duplicates. When the vocabulary holds <|return|> and <|call|> (or <|calls|> and
 * <|flush|>), <|end|> ends a message but not the generation (gpt-oss), so it is left out, as in llama.cpp.
 */
export function endOfGenerationIds(
  tokens: readonly string[],
  named: readonly (number | undefined)[],
): number[] {
  const ids = new Set(named.filter((id): id is number => id !== undefined));
  const idOf = new Map<string, number>();
  tokens.forEach((token, id) => {
    if (!idOf.has(token)) idOf.set(token, id);
  });
  for (const texts of fimTexts) {
    const id = texts.map((t) => idOf.get(t)).find((x) => x !== undefined);
    if (id !== undefined) ids.add(id);
  }
  for (const [text, id] of idOf) if (endOfGenerationTexts.has(text)) ids.add(id);
  const has = (text: string) => idOf.has(text);
  const endId = idOf.get("<|end|>");
  if (
    endId !== undefined &&
    ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")))
  ) {
    ids.delete(endId);
  }
  return [...ids];
}

/** Whether llama.cpp treats a token's text as end of generation (and so as a control token). */
export function isEndOfGenerationText(token: string): boolean {
  return endOfGenerationTexts.has(token);
}

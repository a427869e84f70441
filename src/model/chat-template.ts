import { Template } from "@huggingface/jinja";
import { fileErrorText, InputError } from "./errors.js";
import type { Tokenizer } from "./tokenizer/tokenizer.js";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatRenderOptions {
  /** End with the cue for the assistant's turn (the template's `add_generation_prompt`). */
  addGenerationPrompt?: boolean;
}

/**
 * A model's chat template: turns messages into the prompt text the model was trained on.
 *
 * With a Jinja template (GGUF `tokenizer.chat_template`, tokenizer_config.json `chat_template`) it is
 * rendered by @huggingface/jinja with the variables HF transformers passes: `messages`, `bos_token`,
 * `eos_token`, `add_generation_prompt`; @huggingface/jinja supplies `raise_exception(msg)`, which templates
 * call to reject messages (e.g. roles that do not alternate); that message becomes the InputError's. Such
 * templates usually write the BOS text themselves, so encode the rendered prompt without special tokens.
 *
 * Models without a template (stories260K, the demo model) get a plain fallback, one line per message with
 * the role capitalized, and "Assistant:" as the generation prompt:
 *
 *   System: You are terse.
 *   User: Hi
 *   Assistant:
 */
export class ChatTemplate {
  private readonly template: Template | undefined;

  /** `source` names where the template came from (the model file), for error messages. */
  constructor(
    templateText: string | undefined,
    private readonly specialTokens: { bosToken?: string; eosToken?: string } = {},
    private readonly source = "model",
  ) {
    if (templateText === undefined) return;
    try {
      this.template = new Template(templateText);
    } catch (e) {
      throw new InputError(`${source}: chat template does not parse: ${fileErrorText(e)}`);
    }
  }

  render(messages: readonly ChatMessage[], opts?: ChatRenderOptions): string {
    const addGenerationPrompt = opts?.addGenerationPrompt ?? false;
    if (this.template === undefined) return plainChat(messages, addGenerationPrompt);
    try {
      return this.template.render({
        messages,
        bos_token: this.specialTokens.bosToken ?? "",
        eos_token: this.specialTokens.eosToken ?? "",
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (e) {
      throw new InputError(`${this.source}: chat template failed: ${fileErrorText(e)}`);
    }
  }
}

/** Renders with a model's template and its tokenizer's BOS/EOS spelling. */
export function renderChat(
  model: { chatTemplate?: string; tokenizer: Tokenizer; path?: string },
  messages: readonly ChatMessage[],
  opts?: ChatRenderOptions,
): string {
  const { tokenizer } = model;
  const name = (id: number | undefined) => (id === undefined ? undefined : tokenizer.idToToken(id));
  const specialTokens = { bosToken: name(tokenizer.bosId), eosToken: name(tokenizer.eosId) };
  return new ChatTemplate(model.chatTemplate, specialTokens, model.path).render(messages, opts);
}

/**
 * The prompt token ids of a chat: rendered, then encoded. A Jinja template writes the BOS text itself, so
 * special tokens are added only for the plain fallback.
 */
export function encodeChat(
  model: { chatTemplate?: string; tokenizer: Tokenizer; path?: string },
  messages: readonly ChatMessage[],
  opts?: ChatRenderOptions,
): number[] {
  return model.tokenizer.encode(renderChat(model, messages, opts), {
    addSpecial: model.chatTemplate === undefined,
  });
}

function plainChat(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
  const lines = messages.map((m) => `${m.role.charAt(0).toUpperCase()}${m.role.slice(1)}: ${m.content}\n`);
  return lines.join("") + (addGenerationPrompt ? "Assistant:" : "");
}

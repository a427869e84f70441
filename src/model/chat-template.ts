import { randomBytes } from "node:crypto";
import { Template } from "@huggingface/jinja";
import { fileErrorText, InputError } from "./errors.js";
import type { EncodeRequest, TextPart, Tokenizer } from "./tokenizer/tokenizer.js";

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

  /**
   * The rendered prompt as text parts: the template's own markup (special-token text in it is parsed) and
   * each message's content (never parsed). The template is rendered once more with every content replaced
   * by a marker that carries an unguessable nonce, its leading and trailing whitespace kept around the
   * marker so that `| trim` acts on it as on the content; the markers then show where the content went.
   * That holds only when the template passes content through unchanged (or trimmed), which is checked: the
   * parts must join to exactly the plain rendering. Otherwise (a template that slices, splits or tests the
   * content) the result is undefined.
   */
  renderParts(messages: readonly ChatMessage[], opts?: ChatRenderOptions): TextPart[] | undefined {
    const rendered = this.render(messages, opts);
    const nonce = randomBytes(12).toString("hex");
    const cores = messages.map((m) => m.content.trim());
    const marked = messages.map((m, i) => {
      if (m.content === "") return m;
      const lead = m.content.length - m.content.trimStart().length;
      const marker = `${markerOpen}${nonce}:${i}${markerClose}`;
      return { ...m, content: m.content.slice(0, lead) + marker + m.content.slice(lead + cores[i].length) };
    });
    const parts: TextPart[] = [];
    const markers = new RegExp(`${markerOpen}${nonce}:(\\d+)${markerClose}`, "g");
    const withMarkers = this.render(marked, opts);
    let markupStart = 0;
    for (const match of withMarkers.matchAll(markers)) {
      parts.push({ text: withMarkers.slice(markupStart, match.index), parseSpecial: true });
      parts.push({ text: cores[Number(match[1])], parseSpecial: false });
      markupStart = match.index + match[0].length;
    }
    parts.push({ text: withMarkers.slice(markupStart), parseSpecial: true });
    const nonEmpty = parts.filter((p) => p.text !== "");
    return nonEmpty.map((p) => p.text).join("") === rendered ? nonEmpty : undefined;
  }
}

/** Private-use characters around a content marker (see renderParts). */
const markerOpen = "\uE000";
const markerClose = "\uE001";

/** Renders with a model's template and its tokenizer's BOS/EOS spelling. */
export function renderChat(
  model: { chatTemplate?: string; tokenizer: Tokenizer; path?: string },
  messages: readonly ChatMessage[],
  opts?: ChatRenderOptions,
): string {
  return chatTemplateOf(model).render(messages, opts);
}

function chatTemplateOf(model: { chatTemplate?: string; tokenizer: Tokenizer; path?: string }): ChatTemplate {
  const { tokenizer } = model;
  const name = (id: number | undefined) => (id === undefined ? undefined : tokenizer.idToToken(id));
  const specialTokens = { bosToken: name(tokenizer.bosId), eosToken: name(tokenizer.eosId) };
  return new ChatTemplate(model.chatTemplate, specialTokens, model.path);
}

/**
 * A chat's prompt, ready for `Tokenizer.encode`. Message content is plain text: only the template's own
 * markup yields special tokens, so a user cannot close a turn and open another by typing "<|im_end|>".
 * The ids equal those of the rendered string wherever the content holds no special-token text. A template
 * that does more with the content than pass it through or trim it is rendered and encoded as a whole,
 * which is safe only when no content holds special-token text; such a chat is rejected.
 * A Jinja template writes the BOS text itself, so special tokens are added only for the plain fallback.
 */
export function chatPrompt(
  model: { chatTemplate?: string; tokenizer: Tokenizer; path?: string },
  messages: readonly ChatMessage[],
  opts?: ChatRenderOptions,
): EncodeRequest {
  const addSpecial = model.chatTemplate === undefined;
  const template = chatTemplateOf(model);
  const parts = template.renderParts(messages, opts);
  if (parts !== undefined) return { text: parts, addSpecial };
  messages.forEach((m, i) => {
    const special = model.tokenizer.findSpecialText(m.content);
    if (special !== undefined) {
      throw new InputError(
        `messages[${i}].content holds the special-token text ${JSON.stringify(special)}, and this model's chat template changes message content, so it cannot be kept as plain text`,
      );
    }
  });
  return { text: template.render(messages, opts), addSpecial };
}

/** The prompt token ids of a chat (see chatPrompt). */
export function encodeChat(
  model: { chatTemplate?: string; tokenizer: Tokenizer; path?: string },
  messages: readonly ChatMessage[],
  opts?: ChatRenderOptions,
): number[] {
  const { text, ...options } = chatPrompt(model, messages, opts);
  return model.tokenizer.encode(text, options);
}

function plainChat(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
  const lines = messages.map((m) => `${m.role.charAt(0).toUpperCase()}${m.role.slice(1)}: ${m.content}\n`);
  return lines.join("") + (addGenerationPrompt ? "Assistant:" : "");
}

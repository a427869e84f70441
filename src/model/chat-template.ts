import { randomBytes } from "node:crypto";
import { Template } from "@huggingface/jinja";
import { fileErrorText, InputError } from "./errors.js";
import type { EncodeRequest, TextPart, Tokenizer } from "./tokenizer/tokenizer.js";
import { functionSignature } from "./tool-calls/signature.js";
import type { ToolDefinition } from "./tool-calls/tool-call.js";

/** A call an assistant turn made, as templates read it: `arguments` parsed from its JSON text, as vLLM does. */
export interface ChatToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

export interface ChatMessage {
  role: string;
  /** An assistant turn that only calls tools has "" (OpenAI's `content: null`). */
  content: string;
  /** The calls an assistant turn made. */
  toolCalls?: readonly ChatToolCall[];
  /** The call a `tool` message answers. */
  toolCallId?: string;
}

export interface ChatRenderOptions {
  /** End with the cue for the assistant's turn (the template's `add_generation_prompt`). */
  addGenerationPrompt?: boolean;
  /** Functions the model may call (the template's `tools`). */
  tools?: readonly ToolDefinition[];
}

/** A chat that cannot be rendered safely because of one field (named as the OpenAI API names it). */
export class ChatFieldError extends InputError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/**
 * A model's chat template: turns messages into the prompt text the model was trained on.
 *
 * With a Jinja template (GGUF `tokenizer.chat_template`, tokenizer_config.json `chat_template`) it is
 * rendered by @huggingface/jinja with the variables HF transformers passes: `messages` (an assistant turn's
 * calls as `tool_calls: [{id, type, function: {name, arguments}}]`, a tool result's `tool_call_id`),
 * `tools` (`[{type: "function", function: {name, description, parameters}}]`, only when there are some),
 * `bos_token`, `eos_token`, `add_generation_prompt`; @huggingface/jinja supplies `raise_exception(msg)`, which templates
 * call to reject messages (e.g. roles that do not alternate); that message becomes the InputError's. Such
 * templates usually write the BOS text themselves, so encode the rendered prompt without special tokens.
 *
 * Models without a template (stories260K, the demo model) get a plain fallback, one line per message with
 * the role capitalized, and "Assistant:" as the generation prompt:
 *
 *   System: You are terse.
 *   User: Hi
 *   Assistant:
 *
 * With tools it asks for Hermes' call format (see tool-calls/hermes.ts): a first system line lists the
 * functions (tool-calls/signature.ts), an assistant turn's calls follow its content, and tool results are
 * "Tool:" lines.
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
    const tools = opts?.tools ?? [];
    if (this.template === undefined) return plainChat(messages, addGenerationPrompt, tools);
    try {
      return this.template.render({
        messages: messages.map(templateMessage),
        ...(tools.length > 0 ? { tools: tools.map(templateTool) } : {}),
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

/** A message as HF transformers hands it to a template; `tool_calls` only where there are calls. */
function templateMessage(m: ChatMessage): Record<string, unknown> {
  const message: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.toolCalls !== undefined && m.toolCalls.length > 0) {
    message.tool_calls = m.toolCalls.map((c) => ({
      id: c.id,
      type: "function",
      function: { name: c.name, arguments: c.arguments },
    }));
  }
  if (m.toolCallId !== undefined) message.tool_call_id = m.toolCallId;
  return message;
}

/** A tool as OpenAI's request (and so HF transformers' `tools`) writes it; absent fields stay absent. */
function templateTool(tool: ToolDefinition): Record<string, unknown> {
  const fn: Record<string, unknown> = { name: tool.name };
  if (tool.description !== undefined) fn.description = tool.description;
  if (tool.parameters !== undefined) fn.parameters = tool.parameters;
  return { type: "function", function: fn };
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
 * Tool definitions and call arguments are not content: the template writes them (as JSON), so they are
 * markup, and a chat whose tools or calls hold special-token text is rejected (a ChatFieldError naming it).
 */
export function chatPrompt(
  model: { chatTemplate?: string; tokenizer: Tokenizer; path?: string },
  messages: readonly ChatMessage[],
  opts?: ChatRenderOptions,
): EncodeRequest {
  checkRenderedData(model.tokenizer, messages, opts?.tools ?? []);
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

/**
 * Throws a ChatFieldError for the first string in the chat's tools or calls (keys too) that holds
 * special-token text: those are rendered as the template's markup, where such text would become control tokens.
 */
function checkRenderedData(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  tools: readonly ToolDefinition[],
): void {
  const fields: [string, unknown][] = tools.map((t, i) => [`tools[${i}].function`, t]);
  messages.forEach((m, i) => {
    m.toolCalls?.forEach((c, j) => {
      fields.push([`messages[${i}].tool_calls[${j}].id`, c.id]);
      fields.push([`messages[${i}].tool_calls[${j}].function.name`, c.name]);
      fields.push([`messages[${i}].tool_calls[${j}].function.arguments`, c.arguments]);
    });
    if (m.toolCallId !== undefined) fields.push([`messages[${i}].tool_call_id`, m.toolCallId]);
  });
  for (const [path, value] of fields) {
    const found = specialTextIn(tokenizer, value, path);
    if (found) {
      throw new ChatFieldError(
        found.path,
        `holds the special-token text ${JSON.stringify(found.special)}, which the chat template would turn into a control token`,
      );
    }
  }
}

/** The first string in `value` (a JSON value; object keys included) that holds special-token text, and where. */
function specialTextIn(
  tokenizer: Tokenizer,
  value: unknown,
  path: string,
): { path: string; special: string } | undefined {
  if (typeof value === "string") {
    const special = tokenizer.findSpecialText(value);
    return special === undefined ? undefined : { path, special };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = specialTextIn(tokenizer, value[i], `${path}[${i}]`);
      if (found) return found;
    }
  } else if (typeof value === "object" && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      const found = specialTextIn(tokenizer, key, path) ?? specialTextIn(tokenizer, v, `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
}

function plainChat(
  messages: readonly ChatMessage[],
  addGenerationPrompt: boolean,
  tools: readonly ToolDefinition[],
): string {
  const lines = tools.length > 0 ? [`System: ${plainToolsInstruction(tools)}\n`] : [];
  for (const m of messages) {
    const calls = (m.toolCalls ?? []).map(
      (c) => `<tool_call>${JSON.stringify({ name: c.name, arguments: c.arguments })}</tool_call>`,
    );
    lines.push(`${m.role.charAt(0).toUpperCase()}${m.role.slice(1)}: ${m.content}${calls.join("")}\n`);
  }
  return lines.join("") + (addGenerationPrompt ? "Assistant:" : "");
}

/** The plain fallback's system line for tools: each function's signature on a line, and Hermes' call format. */
function plainToolsInstruction(tools: readonly ToolDefinition[]): string {
  const functions = tools.map((t) => `${functionSignature(t)}\n`);
  return (
    `You may call these functions:\n${functions.join("")}` +
    'Call one as <tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call>'
  );
}

import { hermesFormat } from "./hermes.js";
import { llama3JsonFormat } from "./llama3-json.js";
import { mistralFormat } from "./mistral.js";
import type { ToolCallFormat } from "./tool-call.js";

/**
 * The tool-call format a chat template asks the model for, read from the template's text (vLLM makes the
 * user name it with `--tool-call-parser`; the template says it as surely). Each rule is the format's own
 * marker as the family's templates write it:
 * - `[TOOL_CALLS]`: mistral (Mistral 7B v0.3, Nemo, Small);
 * - `<tool_call>` without `<function=`: hermes (Qwen2.5, Qwen3, QwQ, Hermes, Granite 4); Qwen3-Coder's
 *   `<tool_call><function=…>` XML (vLLM's `qwen3_coder`) is not parsed;
 * - `"parameters": dictionary of argument name`: llama3_json (Llama 3.1, 3.2, 4), the instruction those
 *   templates give.
 * Models without a template get the plain fallback, which asks for hermes. Any other template (one that
 * does not mention tools, or a format vellum does not parse) has none: such a model cannot be given tools.
 */
export function toolCallFormatOf(templateText: string | undefined): ToolCallFormat | undefined {
  if (templateText === undefined) return hermesFormat;
  if (templateText.includes("[TOOL_CALLS]")) return mistralFormat;
  if (templateText.includes("<tool_call>") && !templateText.includes("<function=")) return hermesFormat;
  if (templateText.includes('"parameters": dictionary of argument name')) return llama3JsonFormat;
  return undefined;
}

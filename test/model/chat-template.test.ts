import { describe, expect, test } from "vitest";
import { ChatTemplate, renderChat } from "../../src/model/chat-template.js";
import { InputError } from "../../src/model/errors.js";
import { ByteLevelBpeTokenizer } from "../../src/model/tokenizer/byte-bpe.js";
import { chatmlTemplate, llama3Template, mistralTemplate } from "../chat-templates.js";
import { byteLevelFirstSpecial, tinyByteLevelSpec } from "../tokenizer-fixtures.js";

describe("ChatTemplate", () => {
  test("renders a Llama 3 template with bos_token and the generation prompt", () => {
    const template = new ChatTemplate(llama3Template, {
      bosToken: "<|begin_of_text|>",
      eosToken: "<|eot_id|>",
    });
    const messages = [
      { role: "system", content: "You are helpful." },
      { role: "user", content: " Hi \n" },
    ];
    expect(template.render(messages, { addGenerationPrompt: true })).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    expect(template.render(messages)).not.toContain("assistant");
  });

  test("renders a ChatML template, adding its default system prompt", () => {
    const template = new ChatTemplate(chatmlTemplate);
    expect(template.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: true })).toBe(
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  test("renders bos/eos tokens in a Mistral template", () => {
    const template = new ChatTemplate(mistralTemplate, { bosToken: "<s>", eosToken: "</s>" });
    const messages = [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello" },
      { role: "user", content: "Bye" },
    ];
    expect(template.render(messages)).toBe("<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]");
  });

  test("raise_exception in the template becomes an InputError with the template's message", () => {
    const template = new ChatTemplate(mistralTemplate, { bosToken: "<s>" }, "mistral.gguf");
    const render = () => template.render([{ role: "assistant", content: "Hello" }]);
    expect(render).toThrow(InputError);
    expect(render).toThrow(
      "mistral.gguf: chat template failed: Conversation roles must alternate user/assistant/user/assistant/...",
    );
  });

  test("a template that does not parse is an InputError at load", () => {
    expect(() => new ChatTemplate("{% for m in messages %}{{ m.content }}", {}, "bad.gguf")).toThrow(
      /^bad\.gguf: chat template does not parse: /,
    );
  });

  test("without a template, the plain fallback: one 'Role: content' line per message, then 'Assistant:'", () => {
    const template = new ChatTemplate(undefined);
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello." },
      { role: "user", content: "Bye" },
    ];
    expect(template.render(messages, { addGenerationPrompt: true })).toBe(
      "System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Bye\nAssistant:",
    );
    expect(template.render(messages)).toBe("System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Bye\n");
  });
});

describe("renderChat", () => {
  test("uses the model's template with its tokenizer's BOS/EOS, and the result encodes special tokens", () => {
    const tokenizer = new ByteLevelBpeTokenizer(tinyByteLevelSpec("llama-bpe"));
    const template =
      "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.content }}{{ eos_token }}{% endfor %}";
    const prompt = renderChat({ chatTemplate: template, tokenizer }, [{ role: "user", content: "hi" }]);
    expect(prompt).toBe("<|begin_of_text|><|im_start|>hi<|im_end|>");
    const ids = tokenizer.encode(prompt, { addSpecial: false });
    const first = byteLevelFirstSpecial;
    expect(ids).toEqual([first, first + 1, "h".charCodeAt(0), "i".charCodeAt(0), first + 2]);
  });
});

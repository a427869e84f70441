import { describe, expect, test } from "vitest";
import { ChatTemplate, renderChat } from "../src/model/chat-template.js";
import { InputError } from "../src/model/errors.js";
import { ByteLevelBpeTokenizer } from "../src/model/tokenizer/byte-bpe.js";
import { byteLevelFirstSpecial, tinyByteLevelSpec } from "./tokenizer-fixtures.js";

/** Meta-Llama-3-8B-Instruct's template (tokenizer_config.json chat_template). */
const llama3Template =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** Qwen2's ChatML template with its default system prompt. */
const chatmlTemplate =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Mistral-Instruct's template, which rejects roles that do not alternate. */
const mistralTemplate =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}";

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

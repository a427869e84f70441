import { randomUUID } from "node:crypto";
import type { ToolCallEvent } from "../model/tool-calls/tool-call.js";

type ItemStatus = "in_progress" | "completed" | "incomplete";

interface OutputText {
  type: "output_text";
  text: string;
  annotations: never[];
}

/** The assistant's text, as one output_text part. */
interface MessageItem {
  type: "message";
  id: string;
  status: ItemStatus;
  role: "assistant";
  content: OutputText[];
}

/** A function call: `call_id` is what the client's function_call_output answers, `arguments` JSON text. */
interface FunctionCallItem {
  type: "function_call";
  id: string;
  status: ItemStatus;
  call_id: string;
  name: string;
  arguments: string;
}

export type OutputItem = MessageItem | FunctionCallItem;

/** Sends one streaming event: its type and its fields (the caller adds `type` and `sequence_number`). */
export type EmitEvent = (type: string, fields: Record<string, unknown>) => void;

/**
 * A response's `output` list, built from the model's text as it arrives (already split into content and
 * calls by a tool-call parser), with the streaming events that describe each step. Both response paths
 * build it the same way (the whole response simply ignores the events), so a stream adds up to exactly
 * the response that the same generation returns whole. Text opens a message item, a call a function_call
 * item; an item is done when the next one opens or the output ends.
 */
export class ResponseOutput {
  readonly items: OutputItem[] = [];
  private open: OutputItem | undefined;

  constructor(private readonly emit: EmitEvent) {}

  add(event: ToolCallEvent): void {
    if (event.kind === "content") this.addText(event.text);
    else if (event.kind === "call") this.addCall(event.id, event.name);
    else this.addArguments(event.text);
  }

  /**
   * Closes the last item with `status` ("incomplete" when the output was cut off). A response with no items
   * gets an empty message, as OpenAI's always holds one.
   */
  finish(status: ItemStatus): void {
    if (this.items.length === 0) this.openMessage();
    this.closeOpen(status);
  }

  private addText(text: string): void {
    if (text === "") return;
    const item = this.open?.type === "message" ? this.open : this.openMessage();
    item.content[0].text += text;
    this.emit("response.output_text.delta", {
      ...this.place(item),
      content_index: 0,
      delta: text,
      logprobs: [],
    });
  }

  private addCall(callId: string, name: string): void {
    this.openItem({
      type: "function_call",
      id: `fc_${randomUUID().replaceAll("-", "")}`,
      status: "in_progress",
      call_id: callId,
      name,
      arguments: "",
    });
  }

  /** Arguments always belong to the call opened last (parsers report calls one after another). */
  private addArguments(text: string): void {
    const item = this.open;
    if (item?.type !== "function_call") throw new Error("tool-call arguments before their call");
    item.arguments += text;
    this.emit("response.function_call_arguments.delta", { ...this.place(item), delta: text });
  }

  private openMessage(): MessageItem {
    const item: MessageItem = {
      type: "message",
      id: `msg_${randomUUID().replaceAll("-", "")}`,
      status: "in_progress",
      role: "assistant",
      content: [],
    };
    this.openItem(item);
    const part: OutputText = { type: "output_text", text: "", annotations: [] };
    item.content.push(part);
    this.emit("response.content_part.added", { ...this.place(item), content_index: 0, part });
    return item;
  }

  private openItem(item: OutputItem): void {
    this.closeOpen("completed");
    this.items.push(item);
    this.open = item;
    this.emit("response.output_item.added", { output_index: this.items.length - 1, item });
  }

  private closeOpen(status: ItemStatus): void {
    const item = this.open;
    if (item === undefined) return;
    this.open = undefined;
    item.status = status;
    const place = this.place(item);
    if (item.type === "message") {
      const part = item.content[0];
      this.emit("response.output_text.done", { ...place, content_index: 0, text: part.text, logprobs: [] });
      this.emit("response.content_part.done", { ...place, content_index: 0, part });
    } else {
      this.emit("response.function_call_arguments.done", {
        ...place,
        name: item.name,
        arguments: item.arguments,
      });
    }
    this.emit("response.output_item.done", { output_index: place.output_index, item });
  }

  /** Where an item's events point: its id and its index in `output`. */
  private place(item: OutputItem): { item_id: string; output_index: number } {
    return { item_id: item.id, output_index: this.items.indexOf(item) };
  }
}

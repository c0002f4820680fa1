// The conversation's settings panel (system prompt, temperature, max output tokens) and the line
// under the model picker telling about the selected model. Settings are stored on the conversation
// through the API, which checks them; before the first message they are kept here and sent with it.
import { api } from "./api.js";

const number = new Intl.NumberFormat();
// The capabilities a chat person cares about, of those a model card lists.
const SHOWN = ["vision", "tools", "reasoning"];

function price(value) {
  const amount = Number(value);
  return amount === 0 ? "free" : `$${amount}`;
}

// "A small model · 8,192-token context · $0.15 in / $0.6 out per million tokens · vision, tools"
export function modelSummary(card) {
  const parts = [];
  if (card.description) parts.push(card.description);
  parts.push(`${number.format(card.context_length)}-token context`);
  const input = price(card.pricing.input_per_million);
  const output = price(card.pricing.output_per_million);
  parts.push(input === "free" && output === "free" ? "free" : `${input} in / ${output} out per million tokens`);
  const abilities = SHOWN.filter((name) => card.capabilities[name]);
  parts.push(abilities.length ? abilities.join(", ") : "text only");
  return parts.join(" · ");
}

export class ModelDetails {
  constructor({ select, line }, models) {
    this.select = select;
    this.line = line;
    this.models = new Map(models.map((m) => [m.id, m]));
    select.addEventListener("change", () => this.show());
    this.show();
  }

  get current() { return this.models.get(this.select.value) || null; }

  show() {
    const card = this.current;
    this.line.textContent = card ? modelSummary(card) : "";
    this.line.hidden = !card;
  }
}

function readNumber(input, label, whole) {
  if (input.validity.badInput) throw new Error(`The ${label} must be a number.`);
  if (input.value.trim() === "") return null;
  const value = Number(input.value);
  if (whole && !Number.isInteger(value)) throw new Error(`The ${label} must be a whole number.`);
  return value;
}

export class Settings {
  // els: { open, dialog, form, systemPrompt, temperature, maxTokens, limit, status, cancel }
  // chat: { conversation (or null), setConversation(c) }; models: ModelDetails
  constructor(els, chat, models) {
    this.els = els;
    this.chat = chat;
    this.models = models;
    this.pending = {}; // chosen before the conversation exists
    els.open.addEventListener("click", () => this.open());
    els.cancel.addEventListener("click", () => els.dialog.close());
    els.form.addEventListener("submit", (e) => { e.preventDefault(); this.save(); });
  }

  // What a new conversation starts with.
  get choices() { return { ...this.pending }; }

  open() {
    const { dialog, systemPrompt, temperature, maxTokens, limit, status } = this.els;
    // Once the conversation exists its stored settings are the truth (another tab may have changed them).
    const values = this.chat.conversation || this.pending;
    systemPrompt.value = values.system_prompt || "";
    temperature.value = values.temperature ?? "";
    maxTokens.value = values.max_output_tokens ?? "";
    const card = this.models.current;
    limit.textContent = card
      ? `Empty: the model's limit; at most ${number.format(card.max_output_tokens)} for ${card.id}.`
      : "";
    status.textContent = "";
    dialog.showModal();
    systemPrompt.focus();
  }

  async save() {
    const { dialog, systemPrompt, temperature, maxTokens, status } = this.els;
    let fields;
    try {
      fields = {
        system_prompt: systemPrompt.value,
        temperature: readNumber(temperature, "temperature", false),
        max_output_tokens: readNumber(maxTokens, "maximum output tokens", true),
      };
    } catch (e) {
      status.textContent = e.message;
      return;
    }
    const conversation = this.chat.conversation;
    if (!conversation) {
      this.pending = fields;
      dialog.close();
      return;
    }
    try {
      this.chat.setConversation(await api("PATCH", conversation.url, fields));
      dialog.close();
    } catch (e) {
      status.textContent = e.message; // the panel stays open with what was typed
    }
  }
}

// The chat's "Knowledge" control: which of the user's knowledge bases this conversation searches
// (besides its project's), read and saved through /c/<id>/knowledge/ each time it opens or changes.
import { api } from "./api.js";

export class KnowledgePicker {
  constructor(details, chat) {
    this.details = details;
    this.items = details.querySelector(".menu-items");
    this.chat = chat;
    details.addEventListener("toggle", () => { if (details.open) this.load(); });
  }

  url() { return this.details.dataset.url.replace("/0/", `/${this.chat.conversation.id}/`); }

  note(text, link) {
    const p = document.createElement("p");
    p.className = "help";
    p.textContent = text;
    if (link) {
      const a = document.createElement("a");
      a.href = this.details.dataset.pageUrl;
      a.textContent = link;
      p.append(" ", a);
    }
    this.items.replaceChildren(p);
  }

  async load() {
    if (!this.chat.conversation) {
      this.note("Send a first message, then choose the knowledge bases this chat searches.");
      return;
    }
    try {
      this.draw((await api("GET", this.url())).knowledge_bases);
    } catch (e) {
      this.note(e.message);
    }
  }

  draw(stores) {
    if (!stores.length) {
      this.note("You have no knowledge base yet.", "Create one");
      return;
    }
    const boxes = stores.map((store) => {
      const label = document.createElement("label");
      label.className = "check";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = store.id;
      box.checked = store.attached;
      box.addEventListener("change", () => this.save());
      label.append(box, ` ${store.name}`);
      return label;
    });
    this.items.replaceChildren(...boxes);
  }

  async save() {
    const ids = [...this.items.querySelectorAll("input:checked")].map((box) => box.value);
    try {
      this.draw((await api("PUT", this.url(), { knowledge_bases: ids })).knowledge_bases);
    } catch (e) {
      this.chat.alert(e.message);
    }
  }
}

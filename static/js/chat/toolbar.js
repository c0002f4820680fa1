// The open conversation's title, model, rename and delete, changed through the API (its other
// settings are in settings.js).
import { api } from "./api.js";

export class Toolbar {
  // chat: { conversation (or null), setConversation(c), alert(text), leave() }
  constructor(els, chat) {
    this.els = els;
    this.chat = chat;
    els.rename.addEventListener("click", () => this.askRename());
    els.renameDialog.addEventListener("close", () => this.rename());
    els.del.addEventListener("click", () => this.askDelete());
    els.deleteDialog.addEventListener("close", () => this.remove());
    els.model.addEventListener("change", () => this.change({ model: els.model.value }));
  }

  show(conversation) {
    const title = conversation.title || "New chat";
    this.els.title.textContent = title;
    document.title = `${title} · chatsite`;
    this.els.rename.hidden = false;
    this.els.del.hidden = false;
    if (conversation.model && this.els.model.value !== conversation.model) this.els.model.value = conversation.model;
  }

  // A new chat in a project starts with the project's model (and, server-side, its system prompt).
  startIn(project) {
    const options = [...this.els.model.options].map((o) => o.value);
    if (!project.model || !options.includes(project.model)) return;
    this.els.model.value = project.model;
    this.els.model.dispatchEvent(new Event("change"));
  }

  get choices() {
    return { model: this.els.model.value };
  }

  async change(fields) {
    const conversation = this.chat.conversation;
    if (!conversation) return null;
    try {
      const updated = await api("PATCH", conversation.url, fields);
      this.chat.setConversation(updated);
      return updated;
    } catch (e) {
      this.chat.alert(e.message);
      return null;
    }
  }

  askRename() {
    const { renameDialog, renameInput } = this.els;
    renameInput.value = this.chat.conversation.title || "";
    renameDialog.returnValue = "";
    renameDialog.showModal();
    renameInput.select();
  }

  rename() {
    const { renameDialog, renameInput } = this.els;
    if (renameDialog.returnValue === "save" && renameInput.value.trim()) this.change({ title: renameInput.value });
  }

  askDelete() {
    this.els.deleteTitle.textContent = this.chat.conversation.title || "New chat";
    this.els.deleteDialog.returnValue = "";
    this.els.deleteDialog.showModal();
  }

  async remove() {
    if (this.els.deleteDialog.returnValue !== "delete") return;
    try {
      await api("DELETE", this.chat.conversation.url);
      this.chat.leave();
    } catch (e) {
      this.chat.alert(e.message);
    }
  }
}

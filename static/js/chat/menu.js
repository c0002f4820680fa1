// The open conversation's menu: Share (a read-only link), the Markdown and JSON downloads (served by
// the API), Pin, and the project it belongs to.
import { api } from "./api.js";
import { copyWithFeedback } from "../clipboard.js";

export class ConversationMenu {
  // chat: { conversation, setConversation(c), alert(text) }
  constructor(els, chat) {
    Object.assign(this, { els, chat });
    els.share.addEventListener("click", () => this.share());
    els.pin.addEventListener("click", () => this.change({ pinned: els.pin.getAttribute("aria-pressed") !== "true" }));
    els.move.addEventListener("change", () => this.change({ project: els.move.value ? Number(els.move.value) : null }));
    els.copyShare.addEventListener("click", () => copyWithFeedback(els.copyShare, els.shareLink.value));
    // Like any menu: it closes once an item is chosen, on Escape, and on a click elsewhere.
    els.menu.addEventListener("click", (e) => {
      if (e.target.closest("a, button")) els.menu.open = false;
    });
    els.menu.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && els.menu.open) {
        els.menu.open = false;
        els.menu.querySelector("summary").focus();
      }
    });
    document.addEventListener("click", (e) => {
      if (els.menu.open && !els.menu.contains(e.target)) els.menu.open = false;
    });
  }

  show(conversation) {
    const { menu, share, exportMd, exportJson, pin, move } = this.els;
    menu.hidden = !conversation;
    if (!conversation) return;
    share.hidden = Boolean(conversation.temporary);
    pin.hidden = Boolean(conversation.temporary);
    exportMd.href = `${conversation.url}export/?format=md`;
    exportJson.href = `${conversation.url}export/?format=json`;
    pin.setAttribute("aria-pressed", String(Boolean(conversation.pinned)));
    move.value = conversation.project ? String(conversation.project) : "";
  }

  async change(fields) {
    if (!this.chat.conversation) return;
    try {
      this.chat.setConversation(await api("PATCH", this.chat.conversation.url, fields));
    } catch (e) {
      this.chat.alert(e.message);
    }
  }

  async share() {
    const { shareDialog, shareLink, menu } = this.els;
    try {
      const made = await api("POST", `${this.chat.conversation.url}share/`);
      menu.open = false;
      shareLink.value = made.link;
      shareDialog.showModal();
      shareLink.select();
    } catch (e) {
      this.chat.alert(e.message);
    }
  }
}

// The conversation list: search through the API, the open conversation marked, and on small screens
// a panel sliding over the chat.
import { api, withQuery } from "./api.js";

const LISTED = 200;

export class Sidebar {
  constructor({ list, search, searchForm, layout, openButton, closeButton, listUrl, onError }) {
    Object.assign(this, { list, search, layout, openButton, listUrl, onError });
    this.currentId = null;
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.find(search.value), 200);
    });
    searchForm.addEventListener("submit", (e) => { e.preventDefault(); this.find(search.value); });
    openButton.addEventListener("click", () => this.setOpen(true));
    closeButton.addEventListener("click", () => this.setOpen(false));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && layout.classList.contains("sidebar-visible")) this.setOpen(false);
    });
  }

  async find(query) {
    try {
      const page = await api("GET", withQuery(this.listUrl, { q: query, page_size: LISTED }));
      this.render(page.results, query);
    } catch (e) {
      this.onError(e.message);
    }
  }

  render(conversations, query) {
    this.list.replaceChildren();
    conversations.forEach((c) => this.add(c, false));
    if (!conversations.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = query ? `No conversation matches “${query}”.` : "No conversations yet.";
      this.list.appendChild(li);
    }
  }

  add(conversation, toTop) {
    let li = this.list.querySelector(`li[data-id="${conversation.id}"]`);
    this.list.querySelectorAll("li.empty").forEach((x) => x.remove());
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = conversation.id;
      const a = document.createElement("a");
      a.href = conversation.page_url;
      li.appendChild(a);
    }
    li.querySelector("a").textContent = conversation.title || "New chat";
    if (toTop) this.list.prepend(li);
    this.markCurrent(this.currentId);
  }

  markCurrent(id) {
    this.currentId = id;
    this.list.querySelectorAll("a").forEach((a) => {
      if (id !== null && a.parentElement.dataset.id === String(id)) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
  }

  setOpen(open) {
    this.layout.classList.toggle("sidebar-visible", open);
    this.openButton.setAttribute("aria-expanded", String(open));
    if (open) this.search.focus(); else this.openButton.focus();
  }
}

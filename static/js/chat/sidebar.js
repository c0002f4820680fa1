// The conversation list: grouped by date with pinned ones first, read a keyset page at a time as it
// scrolls, searched through the API, narrowed to a project; the open conversation marked; and on
// small screens a panel sliding over the chat.
import { api, withQuery } from "./api.js";
import { GROUPS, groupOf } from "./grouping.js";

const PAGE = 50;

export class Sidebar {
  constructor({ list, search, searchForm, layout, openButton, closeButton, listUrl, onError, initial }) {
    Object.assign(this, { list, search, layout, openButton, listUrl, onError });
    this.currentId = null;
    this.project = "";
    this.query = search.value;
    this.nextCursor = null;
    this.loading = false;
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
    const scroller = list.closest("nav");
    scroller.addEventListener("scroll", () => {
      if (scroller.scrollTop + scroller.clientHeight > scroller.scrollHeight - 200) this.more();
    });
    if (initial) this.render(initial.results, this.query, initial.next_cursor);
  }

  params(cursor) {
    const params = { q: this.query, page_size: PAGE, cursor };
    if (this.project) params.project = this.project;
    return params;
  }

  async find(query) {
    this.query = query;
    try {
      const page = await api("GET", withQuery(this.listUrl, this.params("")));
      this.render(page.results, query, page.next_cursor);
    } catch (e) {
      this.onError(e.message);
    }
  }

  // Narrows the list to a project's conversations ("" for all of them).
  showProject(project) {
    this.project = project ? String(project) : "";
    return this.find(this.query);
  }

  async more() {
    if (!this.nextCursor || this.loading) return;
    this.loading = true;
    try {
      const page = await api("GET", withQuery(this.listUrl, this.params(this.nextCursor)));
      page.results.forEach((c) => this.place(c, false));
      this.nextCursor = page.next_cursor;
      this.markCurrent(this.currentId);
    } catch (e) {
      this.onError(e.message);
    } finally {
      this.loading = false;
    }
  }

  render(conversations, query, nextCursor = null) {
    this.list.replaceChildren();
    this.nextCursor = nextCursor;
    conversations.forEach((c) => this.place(c, false));
    if (!conversations.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = query ? `No conversation matches “${query}”.` : "No conversations yet.";
      this.list.appendChild(li);
    }
    this.markCurrent(this.currentId);
  }

  group(name) {
    let group = this.list.querySelector(`li.list-group[data-group="${name}"]`);
    if (group) return group.querySelector("ul");
    group = document.createElement("li");
    group.className = "list-group";
    group.dataset.group = name;
    const heading = document.createElement("h3");
    heading.textContent = name;
    const items = document.createElement("ul");
    group.append(heading, items);
    const later = GROUPS.slice(GROUPS.indexOf(name) + 1)
      .map((n) => this.list.querySelector(`li.list-group[data-group="${n}"]`))
      .find(Boolean);
    this.list.insertBefore(group, later || null);
    return items;
  }

  place(conversation, toTop) {
    let li = this.list.querySelector(`li[data-id="${conversation.id}"]`);
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = conversation.id;
      const a = document.createElement("a");
      a.href = conversation.page_url;
      li.appendChild(a);
    }
    li.querySelector("a").textContent = conversation.title || "New chat";
    if (conversation.pinned) li.dataset.pinned = "true"; else delete li.dataset.pinned;
    const items = this.group(groupOf(conversation));
    if (toTop) items.prepend(li);
    else if (li.parentElement !== items) items.appendChild(li);
    this.prune();
  }

  // Headings left without conversations go.
  prune() {
    this.list.querySelectorAll("li.list-group").forEach((g) => {
      if (!g.querySelector("li[data-id]")) g.remove();
    });
  }

  add(conversation, toTop) {
    const existing = this.list.querySelector(`li[data-id="${conversation.id}"]`);
    const elsewhere = this.project && String(conversation.project || "") !== this.project;
    if (conversation.temporary || elsewhere) {
      if (existing) existing.remove();
      this.prune();
      return;
    }
    this.list.querySelectorAll("li.empty").forEach((x) => x.remove());
    this.place(conversation, toTop);
    this.markCurrent(this.currentId);
  }

  markCurrent(id) {
    this.currentId = id;
    this.list.querySelectorAll("li[data-id] > a").forEach((a) => {
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

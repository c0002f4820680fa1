// The messages on screen, drawn from the store. What each shows (a typing indicator, an error line,
// which buttons) follows the message's status alone.
import { copyButton } from "../clipboard.js";
import { versionNav } from "./branches.js";
import { renderMarkdown } from "./markdown.js";
import { renderThinking } from "./thinking.js";
import { renderSources, renderToolCalls } from "./tools.js";

function actionButton(label, onClick, cls) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  if (cls) button.className = cls;
  button.addEventListener("click", onClick);
  return button;
}

// The line under a reply that did not complete.
function problemText(message) {
  if (message.status === "error") return `Error: ${message.error || "the reply failed."}`;
  if (message.status === "interrupted") return message.error ? `Interrupted: ${message.error}` : "Stopped.";
  return "";
}

export class Thread {
  // handlers: { edit(id, content) -> bool (sent), regenerate(), switch(id) (show that version) }
  constructor({ scroller, inner, empty, store, handlers }) {
    this.scroller = scroller;
    this.inner = inner;
    this.empty = empty;
    this.store = store;
    this.handlers = handlers;
    this.pendingEdit = null; // the message whose edit was sent; its editor stays open until stored
    this.queue = new Set();
    this.scheduled = false;
  }

  element(id) { return this.inner.querySelector(`[data-id="${id}"]`); }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }

  scrollToBottom() { this.scroller.scrollTop = this.scroller.scrollHeight; }

  // Streaming text is drawn at most once per frame.
  scheduleBody(id) {
    this.queue.add(id);
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      const stick = this.nearBottom();
      this.queue.forEach((queued) => this.renderBody(queued));
      this.queue.clear();
      if (stick) this.scrollToBottom();
    });
  }

  render(id) {
    const message = this.store.get(id);
    let el = this.element(id);
    if (!el) {
      el = document.createElement("article");
      el.className = "msg";
      el.dataset.id = id;
      el.innerHTML = '<div class="msg-body"></div><div class="msg-error" role="alert" hidden></div><div class="msg-actions"></div>';
      const next = this.store.order.find((x) => x > id && this.element(x));
      this.inner.insertBefore(el, next ? this.element(next) : null);
    }
    el.dataset.role = message.role;
    el.dataset.status = message.status;
    el.setAttribute("aria-label", message.role === "user" ? "You said" : "Assistant replied");
    el.setAttribute("aria-busy", message.status === "streaming" ? "true" : "false");
    this.renderBody(id);
    const problem = el.querySelector(".msg-error");
    problem.textContent = problemText(message);
    problem.hidden = !problem.textContent;
    this.empty.hidden = this.store.order.length > 0;
    this.refreshActions();
  }

  renderBody(id) {
    const message = this.store.get(id);
    const el = this.element(id);
    if (!message || !el || el.classList.contains("editing")) return;
    renderThinking(el, message);
    renderToolCalls(el, message);
    renderSources(el, message);
    const body = el.querySelector(".msg-body");
    if (message.role === "assistant" && message.status === "streaming" && !message.content) {
      body.innerHTML = '<span class="typing" aria-label="Writing"><i></i><i></i><i></i></span>';
      return;
    }
    renderMarkdown(body, message.content);
  }

  remove(ids) {
    ids.forEach((id) => {
      const el = this.element(id);
      if (el) el.remove();
      if (this.pendingEdit === id) this.pendingEdit = null; // the edit was stored as a new version
    });
    this.empty.hidden = this.store.order.length > 0;
    this.refreshActions();
  }

  refreshActions() {
    const last = this.store.last();
    const busy = this.store.streaming();
    this.store.order.forEach((id) => {
      const message = this.store.get(id);
      const el = this.element(id);
      if (!el || el.classList.contains("editing")) return;
      const actions = el.querySelector(".msg-actions");
      actions.replaceChildren();
      if (message.status === "streaming") return;
      const versions = versionNav(message, this.handlers.switch, busy);
      if (versions) actions.appendChild(versions);
      if (message.content) actions.appendChild(copyButton(() => message.content, "Copy"));
      if (message.role === "user" && !busy) actions.appendChild(actionButton("Edit", () => this.startEdit(id)));
      if (message.role === "assistant" && last && last.id === id && !busy) {
        if (message.status === "error") actions.appendChild(actionButton("Retry", this.handlers.regenerate, "primary"));
        else actions.appendChild(actionButton("Regenerate", this.handlers.regenerate));
      }
      if (message.role === "assistant" && message.model) {
        const meta = document.createElement("span");
        meta.className = "msg-meta";
        meta.textContent = message.model;
        actions.appendChild(meta);
      }
    });
  }

  startEdit(id) {
    const message = this.store.get(id);
    const el = this.element(id);
    el.classList.add("editing");
    const body = el.querySelector(".msg-body");
    body.replaceChildren();
    const area = document.createElement("textarea");
    area.value = message.content;
    area.setAttribute("aria-label", "Edit message");
    area.rows = Math.min(12, message.content.split("\n").length + 1);
    body.appendChild(area);
    el.querySelector(".msg-actions").replaceChildren(
      actionButton("Save and send", () => {
        if (!area.value.trim()) return;
        // The editor stays open until the server stores the edit: a refusal must not lose the text.
        if (this.handlers.edit(id, area.value)) this.pendingEdit = id;
      }, "primary"),
      actionButton("Cancel", () => this.finishEdit(id)),
    );
    area.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); this.finishEdit(id); }
    });
    area.focus();
  }

  finishEdit(id) {
    if (this.pendingEdit === id) this.pendingEdit = null;
    const el = this.element(id);
    if (el) el.classList.remove("editing");
    this.renderBody(id);
    this.refreshActions();
  }
}

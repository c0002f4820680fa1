// A shared conversation: the snapshot from the page's JSON data block, each message's Markdown drawn
// through the chat's own renderer and sanitizer (js/chat/markdown.js).
import { renderMarkdown } from "./chat/markdown.js";
import { renderSources } from "./chat/sources.js";

const snapshot = JSON.parse(document.getElementById("shared-snapshot").textContent);
const list = document.getElementById("shared-messages");

for (const message of snapshot.messages) {
  const el = document.createElement("article");
  el.className = "msg";
  el.dataset.role = message.role;
  el.setAttribute("aria-label", message.role === "user" ? "They said" : "Assistant replied");
  const body = document.createElement("div");
  body.className = "msg-body";
  renderMarkdown(body, message.content);
  el.appendChild(body);
  if (message.attachments && message.attachments.length) {
    const files = document.createElement("p");
    files.className = "msg-meta";
    files.textContent = `Attachments: ${message.attachments.join(", ")}`;
    el.appendChild(files);
  }
  renderSources(el, message);
  if (message.role === "assistant" && message.model) {
    const meta = document.createElement("div");
    meta.className = "msg-actions";
    const model = document.createElement("span");
    model.className = "msg-meta";
    model.textContent = message.model;
    meta.appendChild(model);
    el.appendChild(meta);
  }
  list.appendChild(el);
}
document.body.dataset.chatReady = "true";

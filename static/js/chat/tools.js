// Tools in the chat: the composer's "Tools" control (the choice is kept per conversation, through the API),
// each tool call of a reply as a collapsible section that follows its state as it happens, and the web
// pages the tools found as numbered sources under the answer. Every text from a tool (its result, its
// sources' titles) goes through the same sanitizer as messages, or into the page as plain text.
import { api } from "./api.js";
import { renderMarkdown } from "./markdown.js";

const STATE_LABELS = { running: "running", done: "done", failed: "failed", cancelled: "cancelled" };
const BUILT_IN = { web_search: "Web search", fetch: "Read web page", file_search: "Search knowledge" };

// The stored shape ({"web_search": true, "fetch": true, "mcp_servers": [...]}) as the control's keys.
function keysOf(tools) {
  const keys = new Set();
  if (tools?.web_search) keys.add("web_search");
  if (tools?.fetch) keys.add("fetch");
  (tools?.mcp_servers || []).forEach((name) => keys.add(`mcp:${name}`));
  return keys;
}

export function toolsOf(keys) {
  const tools = { web_search: keys.has("web_search"), fetch: keys.has("fetch"), mcp_servers: [] };
  keys.forEach((key) => { if (key.startsWith("mcp:")) tools.mcp_servers.push(key.slice(4)); });
  return tools;
}

export class ToolsControl {
  // els: { button, panel, list }; chat: { conversation (or null), setConversation(c), alert(text) };
  // options: [{key, label, available, note}] (conversations.tool_choice.options)
  constructor(els, chat, options) {
    this.els = els;
    this.chat = chat;
    this.pending = new Set(); // chosen before the conversation exists
    this.touched = false; // whether it was (else a new chat starts with its project's tools)
    this.boxes = new Map();
    options.forEach((option) => this.boxes.set(option.key, this.checkbox(option)));
    els.button.addEventListener("click", () => this.toggle());
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !els.panel.hidden) { this.toggle(false); els.button.focus(); }
    });
    document.addEventListener("click", (e) => {
      if (!els.panel.hidden && !els.panel.contains(e.target) && !els.button.contains(e.target)) this.toggle(false);
    });
    this.show(chat.conversation?.tools);
  }

  checkbox(option) {
    const item = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = option.key;
    box.disabled = !option.available;
    label.append(box, document.createTextNode(` ${option.label}`));
    if (option.note) {
      const note = document.createElement("span");
      note.className = "tools-note";
      note.textContent = option.note;
      label.title = option.note;
      item.append(label, note);
    } else {
      item.append(label);
    }
    box.addEventListener("change", () => this.changed());
    this.els.list.appendChild(item);
    return box;
  }

  toggle(open = this.els.panel.hidden) {
    this.els.panel.hidden = !open;
    this.els.button.setAttribute("aria-expanded", String(open));
  }

  get chosen() {
    return new Set([...this.boxes].filter(([, box]) => box.checked).map(([key]) => key));
  }

  // What a new conversation starts with (nothing chosen: the project's default, server-side).
  get choices() { return this.touched ? { tools: toolsOf(this.pending) } : {}; }

  // A new chat in a project starts with the project's tools, unless some were chosen here.
  startIn(project) {
    if (!this.touched) this.show(project.tools);
  }

  // The conversation's stored choice (also when another tab changed it).
  show(tools) {
    const keys = keysOf(tools);
    this.boxes.forEach((box, key) => { box.checked = keys.has(key); });
    this.els.button.classList.toggle("tools-on", keys.size > 0);
  }

  async changed() {
    const chosen = this.chosen;
    this.els.button.classList.toggle("tools-on", chosen.size > 0);
    const conversation = this.chat.conversation;
    if (!conversation) {
      this.pending = chosen;
      this.touched = true;
      return;
    }
    try {
      this.chat.setConversation(await api("PATCH", conversation.url, { tools: toolsOf(chosen) }));
    } catch (e) {
      this.show(conversation.tools); // the stored choice stands
      this.chat.alert(e.message);
    }
  }
}

function toolTitle(call) {
  if (BUILT_IN[call.name]) return BUILT_IN[call.name];
  return call.server ? `${call.tool} (${call.server})` : call.tool || call.name;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function section(call) {
  const details = document.createElement("details");
  details.className = "msg-tool";
  details.dataset.tool = call.name;
  details.dataset.callId = `${call.step}:${call.id}`;
  const summary = document.createElement("summary");
  const name = document.createElement("span");
  name.className = "tool-name";
  const state = document.createElement("span");
  state.className = "tool-state";
  const time = document.createElement("span");
  time.className = "tool-duration";
  summary.append(name, state, time);
  const args = document.createElement("pre");
  args.className = "tool-arguments";
  args.setAttribute("aria-label", "Arguments");
  const result = document.createElement("div");
  result.className = "tool-result";
  result.setAttribute("aria-label", "Result");
  details.append(summary, args, result);
  return details;
}

function fillSection(details, call) {
  const title = toolTitle(call);
  details.dataset.state = call.state;
  details.setAttribute("aria-label", title); // a <details> takes no name from its summary everywhere
  details.querySelector(".tool-name").textContent = title;
  details.querySelector(".tool-state").textContent = STATE_LABELS[call.state] || call.state;
  details.querySelector(".tool-duration").textContent = duration(call.duration_ms);
  details.querySelector(".tool-arguments").textContent = JSON.stringify(call.arguments || {}, null, 2);
  const result = details.querySelector(".tool-result");
  // Redrawn only when it changed: re-rendering would reset a reader's text selection.
  if (details.renderedResult !== call.result) {
    if (call.result) renderMarkdown(result, call.result);
    else result.textContent = "";
    details.renderedResult = call.result;
  }
}

// The reply's tool calls, each a <details data-tool="name">, between its thoughts and its answer.
export function renderToolCalls(el, message) {
  const calls = message.tool_calls || [];
  let box = el.querySelector(".msg-tools");
  if (!calls.length) {
    if (box) box.remove();
    return;
  }
  if (!box) {
    box = document.createElement("div");
    box.className = "msg-tools";
    el.insertBefore(box, el.querySelector(".msg-body"));
  }
  calls.forEach((call) => {
    let details = [...box.children].find((d) => d.dataset.callId === `${call.step}:${call.id}`);
    if (!details) {
      details = section(call);
      box.appendChild(details);
    }
    fillSection(details, call);
  });
}

// The web pages the reply's tools found, numbered in the order found: what its [1], [2] cite.
export function renderSources(el, message) {
  const seen = new Set();
  const sources = [];
  (message.tool_calls || []).forEach((call) => (call.sources || []).forEach((source) => {
    if (source.url && !seen.has(source.url) && /^https?:\/\//.test(source.url)) {
      seen.add(source.url);
      sources.push(source);
    }
  }));
  let list = el.querySelector(".msg-web-sources");
  if (!sources.length) {
    if (list) list.remove();
    return;
  }
  if (!list) {
    list = document.createElement("ol");
    list.className = "msg-web-sources";
    list.dataset.sources = "web";
    list.setAttribute("aria-label", "Sources");
    el.insertBefore(list, el.querySelector(".msg-error"));
  }
  list.replaceChildren(...sources.map((source) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = source.url;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    link.textContent = source.title || source.url;
    item.appendChild(link);
    return item;
  }));
}

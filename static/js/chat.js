/* The chat page: conversation list, composer, and a WebSocket per open conversation.
 * Replies stream as {"type": "delta", id, offset, text} frames; offsets (UTF-16 units, like JS strings)
 * let a socket that joined mid-reply merge a snapshot and live frames without gaps or repeats.
 * All Markdown (user and model text) goes through DOMPurify before it reaches the DOM. */
(function () {
  "use strict";

  const initial = JSON.parse(document.getElementById("chat-initial").textContent);
  const $ = (id) => document.getElementById(id);
  const els = {
    list: $("conversation-list"), search: $("search"), searchForm: $("search-form"),
    title: $("chat-title"), model: $("model"), rename: $("rename"), del: $("delete"),
    systemPrompt: $("system-prompt"), saveSystem: $("save-system-prompt"), systemStatus: $("system-prompt-status"),
    messages: $("messages"), inner: $("messages-inner"), empty: $("empty-chat"), alert: $("chat-alert"),
    composer: $("composer"), input: $("message"), send: $("send"), stop: $("stop"), newChat: $("new-chat"),
    renameDialog: $("rename-dialog"), renameInput: $("rename-input"),
    deleteDialog: $("delete-dialog"), deleteTitle: $("delete-title"),
    sidebarOpen: $("sidebar-open"), sidebarClose: $("sidebar-close"), layout: $("chat-layout"),
  };
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  const state = {
    conversation: initial.conversation,
    messages: new Map(), // id -> message dict
    order: [],
    socket: null,
    socketReady: false,
    retryDelay: 500,
    pendingSend: null, // text sent, not yet acknowledged as stored
    pendingEdit: null, // id of the message whose edit was sent; its editor stays open until stored
    closedForGood: false,
  };

  // ---------------------------------------------------------------- Markdown
  marked.setOptions({ gfm: true, breaks: true });
  hljs.configure({ ignoreUnescapedHTML: true });
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A" && node.getAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });

  function renderMarkdown(target, text) {
    const html = DOMPurify.sanitize(marked.parse(text || ""), {
      USE_PROFILE: { html: true },
      FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
      FORBID_ATTR: ["style"],
    });
    target.innerHTML = html;
    target.querySelectorAll("pre > code").forEach((code) => {
      const pre = code.parentElement;
      const lang = (code.className.match(/language-([\w+#-]+)/) || [])[1];
      // While streaming, a fence's language name may be cut short ("pyth"): highlight known ones only.
      if (!lang || hljs.getLanguage(lang)) {
        try { hljs.highlightElement(code); } catch (e) { /* leave it plain */ }
      }
      const bar = document.createElement("div");
      bar.className = "code-bar";
      const label = document.createElement("span");
      label.textContent = lang || "code";
      bar.appendChild(label);
      bar.appendChild(copyButton(() => code.textContent, "Copy code"));
      pre.insertBefore(bar, code);
    });
  }

  function copyButton(getText, label) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = label;
    button.addEventListener("click", async () => {
      const text = getText();
      try {
        await navigator.clipboard.writeText(text);
      } catch (e) {
        const area = document.createElement("textarea");
        area.value = text; document.body.appendChild(area); area.select();
        document.execCommand("copy"); area.remove();
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    });
    return button;
  }

  // ---------------------------------------------------------------- messages
  const renderQueue = new Set();
  let renderScheduled = false;
  function scheduleRender(id) {
    renderQueue.add(id);
    if (!renderScheduled) {
      renderScheduled = true;
      requestAnimationFrame(() => {
        renderScheduled = false;
        const stick = nearBottom();
        renderQueue.forEach((mid) => renderBody(mid));
        renderQueue.clear();
        if (stick) scrollToBottom();
      });
    }
  }

  function nearBottom() {
    const m = els.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 120;
  }
  function scrollToBottom() { els.messages.scrollTop = els.messages.scrollHeight; }

  function upsert(message) {
    const known = state.messages.get(message.id);
    if (known && message.status === "streaming" && known.content.length > (message.content || "").length) {
      message.content = known.content; // live text is ahead of the stored partial
    }
    state.messages.set(message.id, message);
    if (!state.order.includes(message.id)) {
      state.order.push(message.id);
      state.order.sort((a, b) => a - b);
    }
    renderMessage(message.id);
    updateComposer();
  }

  function remove(ids) {
    ids.forEach((id) => {
      state.messages.delete(id);
      state.order = state.order.filter((x) => x !== id);
      const el = messageEl(id);
      if (el) el.remove();
    });
    refreshActions();
  }

  function messageEl(id) { return els.inner.querySelector(`[data-id="${id}"]`); }

  function renderMessage(id) {
    const message = state.messages.get(id);
    let el = messageEl(id);
    if (!el) {
      el = document.createElement("article");
      el.className = "msg";
      el.dataset.id = id;
      el.innerHTML = '<div class="msg-body"></div><div class="msg-error" role="alert" hidden></div><div class="msg-actions"></div>';
      const next = state.order.find((x) => x > id && messageEl(x));
      els.inner.insertBefore(el, next ? messageEl(next) : null);
    }
    el.dataset.role = message.role;
    el.dataset.status = message.status;
    el.setAttribute("aria-label", message.role === "user" ? "You said" : "Assistant replied");
    el.setAttribute("aria-busy", message.status === "streaming" ? "true" : "false");
    renderBody(id);
    const error = el.querySelector(".msg-error");
    if (message.status === "error" || message.status === "interrupted") {
      error.hidden = false;
      error.textContent = message.status === "error"
        ? `Error: ${message.error || "the reply failed."}`
        : (message.error && message.error !== "Stopped." ? `Interrupted: ${message.error}` : "Stopped.");
    } else {
      error.hidden = true;
      error.textContent = "";
    }
    els.empty.hidden = state.order.length > 0;
    refreshActions();
  }

  function renderBody(id) {
    const message = state.messages.get(id);
    const el = messageEl(id);
    if (!message || !el || el.classList.contains("editing")) return;
    const body = el.querySelector(".msg-body");
    if (message.role === "assistant" && message.status === "streaming" && !message.content) {
      body.innerHTML = '<span class="typing" aria-label="Writing"><i></i><i></i><i></i></span>';
      return;
    }
    renderMarkdown(body, message.content);
  }

  function lastMessage() {
    return state.order.length ? state.messages.get(state.order[state.order.length - 1]) : null;
  }
  function streaming() {
    return state.order.some((id) => state.messages.get(id).status === "streaming");
  }

  function refreshActions() {
    const last = lastMessage();
    const busy = streaming();
    state.order.forEach((id) => {
      const message = state.messages.get(id);
      const el = messageEl(id);
      if (!el || el.classList.contains("editing")) return;
      const actions = el.querySelector(".msg-actions");
      actions.replaceChildren();
      if (message.status === "streaming") return;
      if (message.content) actions.appendChild(copyButton(() => message.content, "Copy"));
      if (message.role === "user" && !busy) actions.appendChild(actionButton("Edit", () => startEdit(id)));
      if (message.role === "assistant" && last && last.id === id && !busy) {
        if (message.status === "error") actions.appendChild(actionButton("Retry", regenerate, "primary"));
        else actions.appendChild(actionButton("Regenerate", regenerate));
      }
      if (message.role === "assistant" && message.model) {
        const meta = document.createElement("span");
        meta.className = "msg-meta";
        meta.textContent = message.model;
        actions.appendChild(meta);
      }
    });
  }

  function actionButton(label, onClick, cls) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (cls) b.className = cls;
    b.addEventListener("click", onClick);
    return b;
  }

  function startEdit(id) {
    const message = state.messages.get(id);
    const el = messageEl(id);
    el.classList.add("editing");
    const body = el.querySelector(".msg-body");
    body.replaceChildren();
    const area = document.createElement("textarea");
    area.value = message.content;
    area.setAttribute("aria-label", "Edit message");
    area.rows = Math.min(12, message.content.split("\n").length + 1);
    body.appendChild(area);
    const actions = el.querySelector(".msg-actions");
    actions.replaceChildren(
      actionButton("Save and send", () => {
        if (!area.value.trim()) return;
        // The editor stays open until the server stores the edit: a refusal must not lose the text.
        if (sendFrame({ type: "edit", id, content: area.value })) state.pendingEdit = id;
      }, "primary"),
      actionButton("Cancel", () => finishEdit(id)),
    );
    area.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); finishEdit(id); }
    });
    area.focus();
  }
  function finishEdit(id) {
    if (state.pendingEdit === id) state.pendingEdit = null;
    const el = messageEl(id);
    if (el) el.classList.remove("editing");
    renderBody(id);
    refreshActions();
  }

  function applyDelta(frame) {
    const message = state.messages.get(frame.id);
    if (!message) { requestSync(); return; }
    const current = message.content || "";
    if (frame.offset + frame.text.length <= current.length) return; // already have it
    if (frame.offset > current.length) { requestSync(); return; } // missed a frame
    message.content = current.slice(0, frame.offset) + frame.text;
    scheduleRender(frame.id);
  }

  let syncRequested = false;
  function requestSync() {
    if (syncRequested) return;
    syncRequested = true;
    sendFrame({ type: "sync" });
    setTimeout(() => { syncRequested = false; }, 500);
  }

  // ---------------------------------------------------------------- composer
  function updateComposer() {
    const busy = streaming();
    els.stop.hidden = !busy;
    els.send.hidden = busy;
    els.messages.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function autoresize() {
    els.input.style.height = "auto";
    els.input.style.height = Math.min(els.input.scrollHeight, 240) + "px";
  }

  function showAlert(text) {
    els.alert.textContent = text;
    els.alert.hidden = !text;
  }

  async function submit() {
    const text = els.input.value;
    if (!text.trim() || streaming() || state.pendingSend !== null) return;
    showAlert("");
    state.pendingSend = text;
    if (!state.conversation) {
      try {
        const created = await api("POST", "/chat/api/conversations/", {
          model: els.model.value, system_prompt: els.systemPrompt.value,
        });
        setConversation(created, true);
        addToList(created, true);
      } catch (e) {
        state.pendingSend = null;
        showAlert(e.message);
        return;
      }
    }
    if (state.socketReady) flushPending();
    // otherwise the socket sends it as soon as it opens
  }

  function flushPending() {
    if (state.pendingSend !== null && state.socketReady) {
      sendFrame({ type: "send", content: state.pendingSend });
    }
  }

  function sendFrame(frame) {
    if (!state.socket || !state.socketReady) {
      showAlert("Not connected to the server; reconnecting…");
      return false;
    }
    state.socket.send(JSON.stringify(frame));
    return true;
  }

  function regenerate() { sendFrame({ type: "regenerate" }); }

  els.composer.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  els.input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  els.input.addEventListener("input", autoresize);
  els.stop.addEventListener("click", () => sendFrame({ type: "stop" }));

  // ---------------------------------------------------------------- socket
  function connect() {
    if (!state.conversation) return;
    const id = state.conversation.id;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/conversations/${id}/`);
    state.socket = socket;
    state.socketReady = false;
    socket.addEventListener("open", () => {
      if (state.socket !== socket) return;
      state.socketReady = true;
      state.retryDelay = 500;
      showAlert("");
      flushPending();
    });
    socket.addEventListener("message", (event) => {
      if (state.socket !== socket) return;
      handle(JSON.parse(event.data));
    });
    socket.addEventListener("close", (event) => {
      if (state.socket !== socket) return;
      state.socketReady = false;
      if (state.closedForGood || event.code === 4404 || event.code === 4410 || event.code === 4401) return;
      setTimeout(() => { if (state.socket === socket) connect(); }, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 8000);
    });
  }

  function handle(frame) {
    switch (frame.type) {
      case "messages": {
        const ids = new Set(frame.messages.map((m) => m.id));
        remove(state.order.filter((id) => !ids.has(id)));
        frame.messages.forEach(upsert);
        scrollToBottom();
        break;
      }
      case "message":
        if (frame.message.role === "user" && state.pendingSend !== null && frame.message.content === state.pendingSend) {
          const sent = state.pendingSend;
          state.pendingSend = null;
          // Stored: take the sent text out of the box, keeping anything typed since.
          const typed = els.input.value;
          els.input.value = typed.startsWith(sent) ? typed.slice(sent.length).replace(/^\n/, "") : typed;
          autoresize();
        }
        upsert(frame.message);
        if (frame.message.id === state.pendingEdit) finishEdit(frame.message.id);
        scrollToBottom();
        break;
      case "delta":
        applyDelta(frame);
        break;
      case "snapshot": {
        const message = state.messages.get(frame.id);
        if (message && frame.content.length >= (message.content || "").length) {
          message.content = frame.content;
          scheduleRender(frame.id);
        }
        break;
      }
      case "removed":
        remove(frame.ids);
        break;
      case "conversation":
        setConversation(frame.conversation, false);
        addToList(frame.conversation, true);
        break;
      case "deleted":
        state.closedForGood = true;
        location.assign("/");
        break;
      case "error":
        state.pendingSend = null;
        state.pendingEdit = null;
        showAlert(frame.message);
        break;
    }
  }

  // ---------------------------------------------------------------- conversations
  async function api(method, url, body) {
    const response = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || data.detail || `Request failed (${response.status})`);
    return data;
  }

  function setConversation(conversation, push) {
    const changed = !state.conversation || state.conversation.id !== conversation.id;
    state.conversation = conversation;
    els.title.textContent = conversation.title;
    document.title = `${conversation.title} · chatsite`;
    els.rename.hidden = false;
    els.del.hidden = false;
    if (conversation.model && els.model.value !== conversation.model) els.model.value = conversation.model;
    if (push && changed) {
      history.pushState({ id: conversation.id }, "", conversation.url);
      connect();
    }
  }

  function addToList(conversation, toTop) {
    let li = els.list.querySelector(`li[data-id="${conversation.id}"]`);
    els.list.querySelectorAll("li.empty").forEach((x) => x.remove());
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = conversation.id;
      const a = document.createElement("a");
      a.href = conversation.url;
      li.appendChild(a);
    }
    li.querySelector("a").textContent = conversation.title;
    if (toTop) els.list.prepend(li);
    markCurrent();
  }

  function markCurrent() {
    els.list.querySelectorAll("a").forEach((a) => {
      const current = state.conversation && a.parentElement.dataset.id === String(state.conversation.id);
      if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
  }

  function renderList(conversations, query) {
    els.list.replaceChildren();
    conversations.forEach((c) => addToList(c, false));
    if (!conversations.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = query ? `No conversation matches “${query}”.` : "No conversations yet.";
      els.list.appendChild(li);
    }
  }

  let searchTimer = null;
  els.search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(async () => {
      const q = els.search.value;
      try {
        const data = await api("GET", `/chat/api/conversations/?q=${encodeURIComponent(q)}`);
        renderList(data.conversations, q);
      } catch (e) { showAlert(e.message); }
    }, 200);
  });
  els.searchForm.addEventListener("submit", (e) => { e.preventDefault(); els.search.dispatchEvent(new Event("input")); });

  els.newChat.addEventListener("click", () => {
    if (!state.conversation) { els.input.focus(); return; }
    location.assign(els.newChat.dataset.href);
  });

  els.rename.addEventListener("click", () => {
    els.renameInput.value = state.conversation.title;
    els.renameDialog.returnValue = "";
    els.renameDialog.showModal();
    els.renameInput.select();
  });
  els.renameDialog.addEventListener("close", async () => {
    if (els.renameDialog.returnValue !== "save" || !els.renameInput.value.trim()) return;
    try {
      const updated = await api("PATCH", `/chat/api/conversations/${state.conversation.id}/`, { title: els.renameInput.value });
      setConversation(updated, false);
      addToList(updated, false);
    } catch (e) { showAlert(e.message); }
  });

  els.del.addEventListener("click", () => {
    els.deleteTitle.textContent = state.conversation.title;
    els.deleteDialog.returnValue = "";
    els.deleteDialog.showModal();
  });
  els.deleteDialog.addEventListener("close", async () => {
    if (els.deleteDialog.returnValue !== "delete") return;
    try {
      state.closedForGood = true;
      await api("DELETE", `/chat/api/conversations/${state.conversation.id}/`);
      location.assign("/");
    } catch (e) { state.closedForGood = false; showAlert(e.message); }
  });

  els.model.addEventListener("change", async () => {
    if (!state.conversation) return;
    try {
      const updated = await api("PATCH", `/chat/api/conversations/${state.conversation.id}/`, { model: els.model.value });
      setConversation(updated, false);
    } catch (e) { showAlert(e.message); }
  });

  els.saveSystem.addEventListener("click", async () => {
    if (!state.conversation) { els.systemStatus.textContent = "Used from the first message."; return; }
    try {
      await api("PATCH", `/chat/api/conversations/${state.conversation.id}/`, { system_prompt: els.systemPrompt.value });
      els.systemStatus.textContent = "Saved.";
    } catch (e) { els.systemStatus.textContent = e.message; }
  });

  // Small screens: the list slides over the chat.
  function setSidebar(open) {
    els.layout.classList.toggle("sidebar-visible", open);
    els.sidebarOpen.setAttribute("aria-expanded", String(open));
    if (open) els.search.focus(); else els.sidebarOpen.focus();
  }
  els.sidebarOpen.addEventListener("click", () => setSidebar(true));
  els.sidebarClose.addEventListener("click", () => setSidebar(false));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && els.layout.classList.contains("sidebar-visible")) setSidebar(false);
  });

  window.addEventListener("popstate", () => location.reload());

  // ---------------------------------------------------------------- start
  initial.messages.forEach(upsert);
  updateComposer();
  scrollToBottom();
  connect();
  if (!els.input.disabled) els.input.focus();
  window.chatReady = true;
})();

// The chat page: wires the conversation list, the thread, the composer and the socket together.
// Its URLs come from the page (data attributes filled by {% url %}), its first state from a JSON
// data block; everything after from the socket and the REST API.
import { api } from "./api.js";
import { ChatSocket } from "./socket.js";
import { Composer } from "./composer.js";
import { ModelDetails, Settings } from "./settings.js";
import { MessageStore } from "./store.js";
import { Sidebar } from "./sidebar.js";
import { Thread } from "./thread.js";
import { Toolbar } from "./toolbar.js";

const $ = (id) => document.getElementById(id);
const layout = $("chat-layout");
const urls = layout.dataset; // conversationsUrl, newChatUrl, socketPath
const initial = JSON.parse($("chat-initial").textContent);

const alertBox = $("chat-alert");
function alert(text) {
  alertBox.textContent = text;
  alertBox.hidden = !text;
}

const store = new MessageStore();
let pendingSend = null; // text sent, not yet stored
let leaving = false;

const chat = {
  conversation: initial.conversation,
  alert,
  setConversation(conversation) { setConversation(conversation, false); },
  leave() {
    leaving = true;
    socket.stop();
    location.assign(urls.newChatUrl);
  },
};

const thread = new Thread({
  scroller: $("messages"),
  inner: $("messages-inner"),
  empty: $("empty-chat"),
  store,
  handlers: {
    edit: (id, content) => sendFrame({ type: "edit", id, content }),
    regenerate: () => sendFrame({ type: "regenerate" }),
    switch: (id) => sendFrame({ type: "switch", id }),
  },
});

const composer = new Composer({
  form: $("composer"),
  input: $("message"),
  send: $("send"),
  stop: $("stop"),
  onSubmit: submit,
  onStop: () => sendFrame({ type: "stop" }),
});

const sidebar = new Sidebar({
  list: $("conversation-list"),
  search: $("search"),
  searchForm: $("search-form"),
  layout,
  openButton: $("sidebar-open"),
  closeButton: $("sidebar-close"),
  listUrl: urls.conversationsUrl,
  onError: alert,
});

const toolbar = new Toolbar({
  title: $("chat-title"), model: $("model"), rename: $("rename"), del: $("delete"),
  renameDialog: $("rename-dialog"), renameInput: $("rename-input"),
  deleteDialog: $("delete-dialog"), deleteTitle: $("delete-title"),
}, chat);

const models = new ModelDetails({ select: $("model"), line: $("model-details") }, initial.models);
const settings = new Settings({
  open: $("settings"), dialog: $("settings-dialog"), form: $("settings-form"), cancel: $("settings-cancel"),
  systemPrompt: $("system-prompt"), temperature: $("temperature"), maxTokens: $("max-output-tokens"),
  limit: $("max-output-tokens-help"), status: $("settings-status"),
}, chat, models);

const socket = new ChatSocket(urls.socketPath, {
  open() {
    alert("");
    flushPending();
  },
  frame: handle,
  signedOut() {
    alert("You are signed out. Log in again to go on; what you typed is still in the box.");
  },
});

function sendFrame(frame) {
  if (socket.send(frame)) return true;
  alert("Not connected to the server; reconnecting…");
  return false;
}

function flushPending() {
  if (pendingSend !== null && socket.ready) sendFrame({ type: "send", content: pendingSend });
}

function refresh() {
  const busy = store.streaming();
  composer.showBusy(busy);
  $("messages").setAttribute("aria-busy", busy ? "true" : "false");
}

function show(message) {
  store.upsert(message);
  thread.render(message.id);
  refresh();
}

function setConversation(conversation, open) {
  const changed = !chat.conversation || chat.conversation.id !== conversation.id;
  chat.conversation = conversation;
  toolbar.show(conversation);
  sidebar.add(conversation, true);
  sidebar.markCurrent(conversation.id);
  if (open && changed) {
    history.pushState({ id: conversation.id }, "", conversation.page_url);
    socket.connect(conversation.id);
  }
}

async function submit() {
  const text = composer.text;
  if (!text.trim() || store.streaming() || pendingSend !== null) return;
  alert("");
  pendingSend = text;
  if (!chat.conversation) {
    try {
      setConversation(await api("POST", urls.conversationsUrl, { ...toolbar.choices, ...settings.choices }), true);
    } catch (e) {
      pendingSend = null;
      alert(e.message);
      return;
    }
  }
  flushPending(); // or the socket sends it as soon as it opens
}

function handle(frame) {
  switch (frame.type) {
    case "messages": {
      const gone = store.missingFrom(frame.messages);
      store.remove(gone);
      thread.remove(gone);
      frame.messages.forEach(show);
      thread.scrollToBottom();
      break;
    }
    case "message":
      if (frame.message.role === "user" && pendingSend !== null && frame.message.content === pendingSend) {
        composer.sent(pendingSend);
        pendingSend = null;
      }
      show(frame.message);
      if (frame.message.id === thread.pendingEdit) thread.finishEdit(frame.message.id);
      thread.scrollToBottom();
      break;
    case "delta": {
      const outcome = store.applyDelta(frame);
      if (outcome === "applied") thread.scheduleBody(frame.id);
      else if (outcome === "gap") requestSync();
      break;
    }
    case "reasoning": {
      const outcome = store.applyDelta(frame, "reasoning");
      if (outcome === "applied") thread.scheduleBody(frame.id);
      else if (outcome === "gap") requestSync();
      break;
    }
    case "snapshot":
      if (store.applySnapshot(frame)) thread.scheduleBody(frame.id);
      break;
    case "removed":
      store.remove(frame.ids);
      thread.remove(frame.ids);
      refresh();
      break;
    case "conversation":
      setConversation(frame.conversation, false);
      break;
    case "deleted":
      if (!leaving) chat.leave();
      break;
    case "error":
      pendingSend = null;
      thread.pendingEdit = null;
      alert(frame.message);
      break;
  }
}

let syncRequested = false;
function requestSync() {
  if (syncRequested) return;
  syncRequested = true;
  sendFrame({ type: "sync" });
  setTimeout(() => { syncRequested = false; }, 500);
}

$("new-chat").addEventListener("click", () => {
  if (!chat.conversation) { composer.focus(); return; }
  location.assign(urls.newChatUrl);
});
window.addEventListener("popstate", () => location.reload());

initial.messages.forEach(show);
refresh();
thread.scrollToBottom();
if (chat.conversation) {
  sidebar.markCurrent(chat.conversation.id);
  socket.connect(chat.conversation.id);
}
if (composer.enabled) composer.focus();
document.body.dataset.chatReady = "true"; // for tests and tools: the page's script has run
window.chatReady = true;

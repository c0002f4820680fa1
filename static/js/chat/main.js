// The chat page: wires the conversation list, the thread, the composer and the socket together.
// Its URLs come from the page (data attributes filled by {% url %}), its first state from a JSON
// data block; everything after from the socket and the REST API.
import { api } from "./api.js";
import { Attachments, renderAttachments } from "./attachments.js";
import { ChatSocket } from "./socket.js";
import { Composer } from "./composer.js";
import { ModelDetails, Settings } from "./settings.js";
import { MessageStore } from "./store.js";
import { Sidebar } from "./sidebar.js";
import { Thread } from "./thread.js";
import { Toolbar } from "./toolbar.js";
import { ConversationMenu } from "./menu.js";
import { Projects } from "./projects.js";
import { ToolsControl } from "./tools.js";
import { renderSources } from "./sources.js";
import { KnowledgePicker } from "./knowledge.js";

const $ = (id) => document.getElementById(id);
const layout = $("chat-layout");
const urls = layout.dataset; // conversationsUrl, projectsUrl, newChatUrl, socketPath, uploadUrl
const initial = JSON.parse($("chat-initial").textContent);
// A new chat can be asked for in a project, or as a temporary chat: /?project=3, /?temporary=1.
const asked = new URLSearchParams(location.search);

const alertBox = $("chat-alert");
function alert(text) {
  alertBox.textContent = text;
  alertBox.hidden = !text;
}

const store = new MessageStore();
let pendingSend = null; // text sent, not yet stored
let pendingFiles = []; // ids of the files sent with it
let leaving = false;

const chat = {
  conversation: initial.conversation,
  alert,
  setConversation(conversation) { setConversation(conversation, false); },
  selectProject(project) { selectProject(project); },
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

const attachments = new Attachments({
  button: $("attach"),
  input: $("attach-input"),
  list: $("file-list"),
  notice: $("files-notice"),
  dropZone: document.querySelector(".chat-main"),
  pasteTarget: $("message"),
  uploadUrl: urls.uploadUrl,
  model: () => initial.models.find((m) => m.id === $("model").value) || null,
  onError: alert,
});
$("model").addEventListener("change", () => attachments.showNotice());

const sidebar = new Sidebar({
  list: $("conversation-list"),
  search: $("search"),
  searchForm: $("search-form"),
  layout,
  openButton: $("sidebar-open"),
  closeButton: $("sidebar-close"),
  listUrl: urls.conversationsUrl,
  onError: alert,
  initial: initial.list,
});

const menu = new ConversationMenu({
  menu: $("conversation-menu"), share: $("share"), exportMd: $("export-md"), exportJson: $("export-json"),
  pin: $("pin"), move: $("move-project"),
  shareDialog: $("share-dialog"), shareLink: $("share-link"), copyShare: $("copy-share"),
}, chat);

const projects = new Projects({
  list: $("project-list"), newButton: $("new-project"), dialog: $("project-dialog"), name: $("project-name"),
  model: $("project-model"), prompt: $("project-prompt"), error: $("project-error"), move: $("move-project"),
  tools: $("project-tools"),
}, urls.projectsUrl, initial.projects, chat);

const temporarySwitch = $("temporary-chat");
let temporary = false;
function setTemporary(on) {
  temporary = on;
  temporarySwitch.setAttribute("aria-checked", String(on));
  layout.classList.toggle("temporary", on);
}
temporarySwitch.addEventListener("click", () => {
  const on = temporarySwitch.getAttribute("aria-checked") !== "true";
  // A temporary chat is one from its start: switching either way starts a new chat.
  if (chat.conversation) location.assign(newChatUrl({ temporary: on }));
  else setTemporary(on);
});

function newChatUrl({ temporary: temp = temporary } = {}) {
  const params = new URLSearchParams();
  const project = projects.current;
  if (project) params.set("project", project.id);
  if (temp) params.set("temporary", "1");
  const query = params.toString();
  return query ? `${urls.newChatUrl}?${query}` : urls.newChatUrl;
}

function selectProject(project) {
  sidebar.showProject(project ? project.id : "");
  if (!chat.conversation && project) {
    toolbar.startIn(project);
    tools.startIn(project);
    if (!settings.pending.system_prompt) settings.pending.system_prompt = project.system_prompt || "";
  }
}

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

const tools = new ToolsControl({
  button: $("tools-button"), panel: $("tools-panel"), list: $("tools-list"),
}, chat, initial.tools);
new KnowledgePicker($("knowledge-picker"), chat);

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
  if (pendingSend !== null && socket.ready) sendFrame({ type: "send", content: pendingSend, attachments: pendingFiles });
}

function refresh() {
  const busy = store.streaming();
  composer.showBusy(busy);
  $("messages").setAttribute("aria-busy", busy ? "true" : "false");
}

function show(message) {
  store.upsert(message);
  thread.render(message.id);
  renderAttachments(thread.element(message.id), message);
  renderSources(thread.element(message.id), message);
  refresh();
}

function setConversation(conversation, open) {
  const changed = !chat.conversation || chat.conversation.id !== conversation.id;
  chat.conversation = conversation;
  toolbar.show(conversation);
  menu.show(conversation);
  tools.show(conversation.tools);
  sidebar.add(conversation, true);
  sidebar.markCurrent(conversation.id);
  if (open && changed) {
    // A temporary chat keeps no address: a reload starts afresh (and ends it).
    if (!conversation.temporary) history.pushState({ id: conversation.id }, "", conversation.page_url);
    socket.connect(conversation.id);
  }
}

async function submit() {
  const text = composer.text;
  if ((!text.trim() && attachments.empty) || store.streaming() || pendingSend !== null) return;
  const problem = attachments.problem(text);
  if (problem) { alert(problem); return; } // what was typed and attached stays
  alert("");
  pendingSend = text;
  pendingFiles = attachments.ids;
  if (!chat.conversation) {
    try {
      const project = projects.current;
      const body = { ...toolbar.choices, ...settings.choices, ...tools.choices, temporary, ...(project ? { project: project.id } : {}) };
      setConversation(await api("POST", urls.conversationsUrl, body), true);
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
        if (pendingFiles.length) attachments.clear();
        pendingSend = null;
        pendingFiles = [];
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
    case "tool":
      if (store.applyTool(frame)) thread.scheduleBody(frame.id);
      else requestSync();
      break;
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
  location.assign(newChatUrl());
});
window.addEventListener("popstate", () => location.reload());

initial.messages.forEach(show);
refresh();
thread.scrollToBottom();
if (chat.conversation) {
  sidebar.markCurrent(chat.conversation.id);
  menu.show(chat.conversation);
  setTemporary(Boolean(chat.conversation.temporary));
  if (chat.conversation.project) projects.select(chat.conversation.project);
  socket.connect(chat.conversation.id);
} else {
  setTemporary(asked.get("temporary") === "1");
  if (asked.get("project")) projects.select(asked.get("project"));
}
if (composer.enabled) composer.focus();
// Loading a chat page is leaving the temporary chat this browser was in: the server ends it (unless a
// reply is still being written in it). Should this fail, the server's sweep ends it later.
await api("POST", `${urls.conversationsUrl}end-temporary/`, { keep: chat.conversation?.id ?? null }).catch(() => {});
document.body.dataset.chatReady = "true"; // for tests and tools: the page's script has run
window.chatReady = true;

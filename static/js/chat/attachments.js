// Files for the next message: picked with "Attach", dropped on the chat, or pasted (screenshots). Each
// is uploaded at once over HTTP (POST to the page's upload URL, session cookie and CSRF token); the
// "send" frame then names their ids, and the server checks they are the sender's. Before sending, the
// page checks what the server will: images need a model with vision, the message must fit its context
// (documents that do not are searched rather than read whole).

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const RETRIEVED_NOTE_TOKENS = 40; // conversations.files.RETRIEVED_NOTE_TOKENS
const encoder = new TextEncoder();

// The one token estimate (usage/tokens.py): about three UTF-8 bytes a token, rounded up.
export function estimateTokens(text) {
  return Math.ceil(encoder.encode(text).length / 3);
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 102.4) / 10} KB`;
  return `${Math.round(bytes / (1024 * 104.8576)) / 10} MB`;
}

function describe(attachment) {
  const parts = [formatSize(attachment.size)];
  if (attachment.kind === "document") parts.push(`${attachment.tokens.toLocaleString()} tokens`);
  return parts.join(" · ");
}

// A page with its corner folded: a document (drawn, as no emoji font can be counted on).
function documentIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "file-icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8zM14 3v5h5M9 13h6M9 17h6");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "1.6");
  path.setAttribute("stroke-linejoin", "round");
  svg.appendChild(path);
  return svg;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A stored attachment as a message shows it: a thumbnail for an image, a name and its size and tokens.
function fileLink(attachment) {
  const link = el("a", `file-chip file-${attachment.kind}`);
  link.href = attachment.url;
  link.setAttribute("download", attachment.name);
  link.title = attachment.name;
  if (attachment.kind === "image") {
    const img = el("img", "file-thumb");
    img.src = attachment.url;
    img.alt = attachment.name;
    img.loading = "lazy";
    link.appendChild(img);
  } else {
    link.appendChild(documentIcon());
  }
  const text = el("span", "file-text");
  text.appendChild(el("span", "file-name", attachment.name));
  text.appendChild(el("span", "file-meta", describe(attachment)));
  link.appendChild(text);
  return link;
}

export function renderAttachments(article, message) {
  let box = article.querySelector(".msg-files");
  const list = message.attachments || [];
  if (!list.length) {
    if (box) box.remove();
    return;
  }
  if (!box) {
    box = el("div", "msg-files");
    box.setAttribute("aria-label", "Attached files");
    article.insertBefore(box, article.querySelector(".msg-body"));
  }
  if (box.dataset.ids === list.map((a) => a.id).join(",")) return;
  box.dataset.ids = list.map((a) => a.id).join(",");
  box.replaceChildren(...list.map(fileLink));
}

export class Attachments {
  // model(): the chosen model's card (catalogue.cards: id, context_length, max_output_tokens, capabilities...) or null.
  constructor({ button, input, list, notice, dropZone, pasteTarget, uploadUrl, model, onError }) {
    Object.assign(this, { input, list, notice, dropZone, uploadUrl, model, onError });
    this.items = []; // {key, name, size, kind, tokens, id, url, preview, state: "uploading"|"ready"}
    this.nextKey = 1;
    button.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      this.add([...input.files]);
      input.value = "";
    });
    pasteTarget.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (!files.length) return;
      e.preventDefault(); // a pasted screenshot is a file, not text
      this.add(files);
    });
    dropZone.addEventListener("dragover", (e) => {
      if (![...(e.dataTransfer?.types || [])].includes("Files")) return;
      e.preventDefault();
      dropZone.classList.add("dropping");
    });
    dropZone.addEventListener("dragleave", (e) => {
      if (!dropZone.contains(e.relatedTarget)) dropZone.classList.remove("dropping");
    });
    dropZone.addEventListener("drop", (e) => {
      dropZone.classList.remove("dropping");
      const files = [...(e.dataTransfer?.files || [])];
      if (!files.length) return;
      e.preventDefault();
      this.add(files);
    });
  }

  get ids() { return this.items.filter((i) => i.state === "ready").map((i) => i.id); }

  get empty() { return this.items.length === 0; }

  add(files) {
    files.forEach((file) => {
      const item = {
        key: this.nextKey++, name: file.name || "pasted image", size: file.size, kind: null, tokens: 0,
        state: "uploading", preview: file.type.startsWith("image/") ? URL.createObjectURL(file) : null,
      };
      this.items.push(item);
      this.upload(item, file);
    });
    this.render();
  }

  async upload(item, file) {
    const body = new FormData();
    body.append("file", file, item.name);
    try {
      const response = await fetch(this.uploadUrl, {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, Accept: "application/json" },
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data.error?.message || `The upload failed (${response.status}).`);
      if (!this.items.includes(item)) { this.discard(data.url); return; } // removed while uploading
      Object.assign(item, data, { state: "ready" });
    } catch (e) {
      this.drop(item);
      this.onError(`${item.name}: ${e.message}`);
    }
    this.render();
  }

  discard(url) {
    fetch(url, { method: "DELETE", credentials: "same-origin", headers: { "X-CSRFToken": csrf } }).catch(() => {});
  }

  drop(item) {
    if (item.preview) URL.revokeObjectURL(item.preview);
    this.items = this.items.filter((i) => i !== item);
  }

  remove(item) {
    if (item.state === "ready") this.discard(item.url);
    this.drop(item);
    this.render();
  }

  // The sent message holds them now: the composer starts empty again.
  clear() {
    this.items.forEach((i) => { if (i.preview) URL.revokeObjectURL(i.preview); });
    this.items = [];
    this.render();
  }

  // Why the message cannot go as it is, or "" (the server checks the same on sending).
  problem(text) {
    if (this.items.some((i) => i.state === "uploading")) return "Wait until the files have uploaded.";
    const model = this.model();
    if (!model || this.empty) return "";
    const images = this.items.filter((i) => i.kind === "image");
    if (images.length && !model.capabilities?.vision) {
      return `${model.id} does not take images. Choose a model with vision, or remove the image.`;
    }
    let tokens = this.items.reduce((sum, i) => sum + i.tokens, 0) + estimateTokens(text);
    const room = model.context_length - Math.min(model.max_output_tokens, Math.floor(model.context_length / 2));
    const documents = this.items.filter((i) => i.kind === "document");
    if (tokens > room && documents.length) {
      // Too long to read whole: the server puts them in the chat's own knowledge base and searches them.
      tokens -= documents.reduce((sum, i) => sum + i.tokens - RETRIEVED_NOTE_TOKENS, 0);
    }
    if (tokens > room) {
      return `The message and its files come to about ${tokens.toLocaleString()} tokens, more than ${model.id} ` +
        `reads at once (${room.toLocaleString()} of its ${model.context_length.toLocaleString()}, the rest kept ` +
        "for the reply). Remove a file or choose a model with a longer context.";
    }
    return "";
  }

  render() {
    this.list.hidden = this.empty;
    this.list.replaceChildren(...this.items.map((item) => {
      const chip = el("li", `file-chip pending file-${item.kind || "unknown"}`);
      chip.dataset.state = item.state;
      if (item.preview) {
        const img = el("img", "file-thumb");
        img.src = item.preview;
        img.alt = "";
        chip.appendChild(img);
      } else {
        chip.appendChild(documentIcon());
      }
      const text = el("span", "file-text");
      text.appendChild(el("span", "file-name", item.name));
      text.appendChild(el("span", "file-meta", item.state === "uploading" ? "Uploading…" : describe(item)));
      chip.appendChild(text);
      const remove = el("button", "icon-button file-remove", "✕");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${item.name}`);
      remove.addEventListener("click", () => this.remove(item));
      chip.appendChild(remove);
      return chip;
    }));
    this.showNotice();
  }

  // Said as soon as it is true, not only on sending: an image for a model that cannot see it.
  showNotice() {
    const model = this.model();
    const blind = model && !model.capabilities?.vision && this.items.some((i) => i.kind === "image");
    this.notice.textContent = blind ? `${model.id} does not take images: choose a model with vision to send them.` : "";
    this.notice.hidden = !blind;
  }
}

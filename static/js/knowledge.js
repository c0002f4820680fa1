// The Knowledge page's files: uploads by button or drop (multipart to the page's files URL, as the form
// would post them) and each file's state redrawn from that URL's JSON while any is being ingested.
const root = document.getElementById("knowledge-store");
const form = document.getElementById("upload-form");
const input = document.getElementById("upload-input");
const rows = document.getElementById("file-rows");
const problem = document.getElementById("upload-error");
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const POLL_MS = 1000;
let polling = null;

function size(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function say(text) {
  problem.textContent = text;
  problem.hidden = !text;
}

function deleteForm(file) {
  const del = document.createElement("form");
  del.method = "post";
  del.action = `${root.dataset.filesUrl}${encodeURIComponent(file.id)}/delete/`;
  const token = document.createElement("input");
  token.type = "hidden";
  token.name = "csrfmiddlewaretoken";
  token.value = csrf;
  const button = document.createElement("button");
  button.type = "submit";
  button.className = "danger";
  button.textContent = "Delete";
  button.setAttribute("aria-label", `Delete ${file.filename}`);
  del.append(token, button);
  return del;
}

function draw(files) {
  const cells = files.map((file) => {
    const row = document.createElement("tr");
    row.dataset.fileId = file.id;
    row.dataset.status = file.status;
    const name = document.createElement("td");
    name.textContent = file.filename;
    const bytes = document.createElement("td");
    bytes.className = "num";
    bytes.textContent = size(file.bytes);
    const state = document.createElement("td");
    state.className = "file-state";
    state.textContent = file.error ? `${file.status}: ${file.error}` : file.status;
    const actions = document.createElement("td");
    actions.appendChild(deleteForm(file));
    row.append(name, bytes, state, actions);
    return row;
  });
  if (!cells.length) {
    const row = document.createElement("tr");
    row.className = "empty";
    row.innerHTML = '<td colspan="4">No files yet.</td>';
    cells.push(row);
  }
  rows.replaceChildren(...cells);
  watch(files);
}

function watch(files) {
  const busy = files.some((file) => file.status === "in_progress");
  if (busy && !polling) polling = setInterval(refresh, POLL_MS);
  if (!busy && polling) { clearInterval(polling); polling = null; }
}

async function refresh() {
  try {
    const response = await fetch(root.dataset.filesUrl, { headers: { Accept: "application/json" } });
    if (response.ok) draw((await response.json()).files);
  } catch { /* the next tick tries again */ }
}

async function upload(fileList) {
  if (!fileList.length) return;
  say("");
  const body = new FormData();
  for (const file of fileList) body.append("file", file);
  try {
    const response = await fetch(root.dataset.filesUrl, {
      method: "POST", body, headers: { Accept: "application/json", "X-CSRFToken": csrf },
    });
    const data = await response.json();
    if (!response.ok) say(data.error ? data.error.message : "The upload failed.");
    else draw(data.files);
  } catch {
    say("The upload failed: the server could not be reached.");
  }
  input.value = "";
}

document.getElementById("upload-submit").hidden = true; // files go as soon as they are chosen
input.addEventListener("change", () => upload(input.files));
form.addEventListener("dragover", (event) => { event.preventDefault(); form.classList.add("dragging"); });
form.addEventListener("dragleave", () => form.classList.remove("dragging"));
form.addEventListener("drop", (event) => {
  event.preventDefault();
  form.classList.remove("dragging");
  upload(event.dataTransfer.files);
});
watch([...rows.querySelectorAll("tr[data-status]")].map((row) => ({ status: row.dataset.status })));
document.body.dataset.knowledgeReady = "true";

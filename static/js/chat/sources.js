// The sources of an answer that used knowledge bases: under it, each "[n] file, page p" opening to the
// passage itself on click. Text only (textContent): a passage is the user's document, never markup.
export function renderSources(el, message) {
  if (!el) return;
  // Its own box only: a web search's numbered links (tools.js) carry data-sources="web" beside it.
  let box = el.querySelector(".msg-sources");
  const sources = message.sources || [];
  if (!sources.length) {
    if (box) box.remove();
    return;
  }
  if (box && box.dataset.sources === String(sources.length)) return;
  if (box) box.remove();
  box = document.createElement("div");
  box.className = "msg-sources";
  box.dataset.sources = String(sources.length);
  box.setAttribute("aria-label", "Sources");
  const title = document.createElement("p");
  title.className = "msg-meta";
  title.textContent = "Sources";
  box.appendChild(title);
  for (const source of sources) {
    const item = document.createElement("details");
    item.className = "source";
    const summary = document.createElement("summary");
    const where = source.page ? `${source.filename}, page ${source.page}` : source.filename;
    summary.textContent = `[${source.n}] ${where}${source.section ? ` — ${source.section}` : ""}`;
    const passage = document.createElement("blockquote");
    passage.className = "source-passage";
    passage.textContent = source.text;
    item.append(summary, passage);
    box.appendChild(item);
  }
  const actions = el.querySelector(".msg-actions");
  el.insertBefore(box, actions || null);
}

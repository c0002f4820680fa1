// A reasoning model's thoughts, in a collapsed "Thinking" section above its answer: streamed live
// (their own frames and offsets), rendered through the same sanitizer as answers.
import { renderMarkdown } from "./markdown.js";

export function renderThinking(el, message) {
  let section = el.querySelector(".msg-thinking");
  if (!message.reasoning) {
    if (section) section.remove();
    return;
  }
  if (!section) {
    section = document.createElement("details");
    section.className = "msg-thinking";
    section.setAttribute("aria-label", "Thinking"); // a <details> takes no name from its summary everywhere
    const summary = document.createElement("summary");
    summary.textContent = "Thinking";
    const body = document.createElement("div");
    body.className = "thinking-body";
    section.append(summary, body);
    el.insertBefore(section, el.querySelector(".msg-body"));
  }
  const body = section.querySelector(".thinking-body");
  // Redrawn only when it changed: re-rendering would reset a reader's text selection.
  if (section.renderedText !== message.reasoning) {
    renderMarkdown(body, message.reasoning);
    section.renderedText = message.reasoning;
  }
}

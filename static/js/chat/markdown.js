// Markdown to safe HTML: all text (the person's and the model's) goes through DOMPurify before it
// reaches the DOM; code blocks get highlighting, a language label and a copy button.
import { marked } from "../../vendor/marked/marked.esm.js";
import DOMPurify from "../../vendor/dompurify/purify.es.mjs";
import hljs from "../../vendor/highlight/highlight.min.js";
import { copyButton } from "../clipboard.js";

marked.setOptions({ gfm: true, breaks: true });
hljs.configure({ ignoreUnescapedHTML: true });
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.getAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const SANITIZE = {
  USE_PROFILE: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
  FORBID_ATTR: ["style"],
};

export function renderMarkdown(target, text) {
  target.innerHTML = DOMPurify.sanitize(marked.parse(text || ""), SANITIZE);
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

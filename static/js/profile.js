// The profile page: copy buttons, and the snippets rewritten for the chosen model. (Its usage chart
// is usage-chart.js.)
import { wireCopyButtons } from "./clipboard.js";

wireCopyButtons();

// The server sends the snippets with a placeholder model id; swap in the chosen one without a
// reload, which would lose a just-created key shown only on this page.
const select = document.getElementById("snippet-model");
const templatesNode = document.getElementById("snippet-templates");
const slotNode = document.getElementById("snippet-model-slot");
if (select && templatesNode && slotNode) {
  const templates = JSON.parse(templatesNode.textContent);
  const slot = JSON.parse(slotNode.textContent);
  select.addEventListener("change", () => {
    // Every model id in the snippets sits inside a JSON string literal.
    const escaped = JSON.stringify(select.value).slice(1, -1);
    Object.keys(templates).forEach((name) => {
      const code = document.getElementById(`snippet-${name}`);
      if (code) code.textContent = templates[name].split(slot).join(escaped);
    });
  });
}

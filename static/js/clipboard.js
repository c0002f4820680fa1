// Copying to the clipboard, for every page: plain http (a server on the LAN) has no async clipboard,
// so a hidden selection stands in for it there.

export function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  try {
    document.execCommand("copy");
  } finally {
    area.remove();
  }
  return Promise.resolve();
}

// Copies, then says so on the button for a moment.
export function copyWithFeedback(button, text) {
  const label = button.textContent;
  return copyText(text)
    .then(() => { button.textContent = "Copied"; }, () => { button.textContent = "Copy failed"; })
    .then(() => { setTimeout(() => { button.textContent = label; }, 1500); });
}

// A button that copies what getText() returns when clicked.
export function copyButton(getText, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = label;
  button.addEventListener("click", () => copyWithFeedback(button, getText()));
  return button;
}

// Buttons already on the page: <button data-copy="#selector"> copies that element's text.
export function wireCopyButtons(root = document) {
  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.getAttribute("data-copy"));
    if (source) copyWithFeedback(button, source.textContent);
  });
}

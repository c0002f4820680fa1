// Versions of a message: regenerating or editing keeps the earlier ones as siblings. A message with
// siblings shows "N / M" between "Previous version" and "Next version"; choosing one asks the server,
// which answers with the branch below it (the same frames every open tab hears).

function navButton(label, symbol, onClick, disabled) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "version-step";
  button.textContent = symbol;
  button.setAttribute("aria-label", label);
  button.title = label;
  button.disabled = disabled;
  button.addEventListener("click", onClick);
  return button;
}

// The "‹ 2 / 3 ›" control of `message`, or null when it has a single version.
export function versionNav(message, onSwitch, busy) {
  const siblings = message.siblings || [message.id];
  if (siblings.length < 2) return null;
  const at = siblings.indexOf(message.id);
  const nav = document.createElement("span");
  nav.className = "versions";
  nav.setAttribute("role", "group");
  nav.setAttribute("aria-label", "Versions");
  const position = document.createElement("span");
  position.className = "version-position";
  position.textContent = `${at + 1} / ${siblings.length}`;
  nav.append(
    navButton("Previous version", "‹", () => onSwitch(siblings[at - 1]), busy || at <= 0),
    position,
    navButton("Next version", "›", () => onSwitch(siblings[at + 1]), busy || at >= siblings.length - 1),
  );
  return nav;
}

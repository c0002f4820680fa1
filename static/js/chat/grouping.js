// Which heading of the conversation list a conversation sits under: pinned ones first, then by the
// day of its last activity in the browser's own time zone.
export const GROUPS = ["Pinned", "Today", "Yesterday", "Previous 7 days", "Older"];

export function groupOf(conversation, now = new Date()) {
  if (conversation.pinned) return "Pinned";
  const when = new Date(conversation.updated_at);
  const day = (offset) => new Date(now.getFullYear(), now.getMonth(), now.getDate() - offset);
  if (when >= day(0)) return "Today";
  if (when >= day(1)) return "Yesterday";
  if (when >= day(7)) return "Previous 7 days";
  return "Older";
}

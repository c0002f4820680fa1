// The open conversation's messages as the server last said, in order. Replies stream as
// {"type": "delta", id, offset, text} frames; offsets (UTF-16 units, like JS strings) let a socket
// that joined mid-reply merge a snapshot and live frames without gaps or repeats.

export class MessageStore {
  constructor() {
    this.messages = new Map(); // id -> message as the API shapes it
    this.order = [];
  }

  get(id) { return this.messages.get(id); }

  last() { return this.order.length ? this.messages.get(this.order[this.order.length - 1]) : null; }

  // Whether a reply is being written: the state the composer and the actions follow.
  streaming() { return this.order.some((id) => this.messages.get(id).status === "streaming"); }

  upsert(message) {
    const known = this.messages.get(message.id);
    if (known && message.status === "streaming") {
      // Live text is ahead of the stored partial.
      if (known.content.length > (message.content || "").length) message.content = known.content;
      if ((known.reasoning || "").length > (message.reasoning || "").length) message.reasoning = known.reasoning;
      if ((known.tool_calls || []).length > (message.tool_calls || []).length) message.tool_calls = known.tool_calls;
    }
    this.messages.set(message.id, message);
    if (!this.order.includes(message.id)) {
      this.order.push(message.id);
      this.order.sort((a, b) => a - b);
    }
    return message;
  }

  remove(ids) {
    ids.forEach((id) => this.messages.delete(id));
    this.order = this.order.filter((id) => this.messages.has(id));
  }

  // Ids not among `messages` (the server's full list): gone while we were away.
  missingFrom(messages) {
    const ids = new Set(messages.map((m) => m.id));
    return this.order.filter((id) => !ids.has(id));
  }

  // "applied", "known" (nothing new) or "gap" (a frame was missed, or the reply is unknown: ask for a sync).
  // `field` is "content" (delta frames) or "reasoning" (reasoning frames): each has its own offsets.
  applyDelta(frame, field = "content") {
    const message = this.messages.get(frame.id);
    if (!message) return "gap";
    const current = message[field] || "";
    if (frame.offset + frame.text.length <= current.length) return "known";
    if (frame.offset > current.length) return "gap";
    message[field] = current.slice(0, frame.offset) + frame.text;
    return "applied";
  }

  // A tool call started or ended: its whole state, put in place (or after the others).
  applyTool(frame) {
    const message = this.messages.get(frame.id);
    if (!message) return false;
    const calls = message.tool_calls || (message.tool_calls = []);
    // Ids are unique within a step only: some models number their calls anew at each step.
    const at = calls.findIndex((call) => call.id === frame.call.id && call.step === frame.call.step);
    if (at === -1) calls.push(frame.call);
    else calls[at] = frame.call;
    return true;
  }

  applySnapshot(frame) {
    const message = this.messages.get(frame.id);
    if (!message || frame.content.length < (message.content || "").length) return false;
    message.content = frame.content;
    if (frame.tool_calls) message.tool_calls = frame.tool_calls;
    if ((frame.reasoning || "").length >= (message.reasoning || "").length) message.reasoning = frame.reasoning || "";
    return true;
  }
}

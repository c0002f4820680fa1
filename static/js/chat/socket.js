// The conversation's socket: reconnects with backoff; stops for good when the conversation is gone,
// and when the login has ended (a close with 4401 followed by a refused reconnect).
const SIGNED_OUT = 4401;
const NOT_FOUND = 4404;
const DELETED = 4410;

export class ChatSocket {
  // handlers: { frame(frame), open(), signedOut() }
  constructor(pathTemplate, handlers) {
    this.pathTemplate = pathTemplate;
    this.handlers = handlers;
    this.socket = null;
    this.ready = false;
    this.retryDelay = 500;
    this.stopped = false;
  }

  connect(conversationId, { afterSignOut = false } = {}) {
    this.conversationId = conversationId;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const path = this.pathTemplate.replace("{id}", encodeURIComponent(conversationId));
    const socket = new WebSocket(`${scheme}://${location.host}${path}`);
    let opened = false;
    this.socket = socket;
    this.ready = false;
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      opened = true;
      this.ready = true;
      this.retryDelay = 500;
      this.handlers.open();
    });
    socket.addEventListener("message", (event) => {
      if (this.socket === socket) this.handlers.frame(JSON.parse(event.data));
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.ready = false;
      if (this.stopped || event.code === NOT_FOUND || event.code === DELETED) return;
      if (afterSignOut && !opened) {
        this.stopped = true;
        this.handlers.signedOut();
        return;
      }
      if (event.code === SIGNED_OUT) {
        // The login this socket belonged to ended, or changed (a password change in this browser keeps
        // it): one more try tells which.
        this.connect(conversationId, { afterSignOut: true });
        return;
      }
      setTimeout(() => { if (this.socket === socket) this.connect(conversationId); }, this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, 8000);
    });
  }

  send(frame) {
    if (!this.socket || !this.ready) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  stop() { this.stopped = true; }
}

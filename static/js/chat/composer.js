// The message box with its Send and Stop buttons. Enter sends, Shift+Enter adds a line.

export class Composer {
  constructor({ form, input, send, stop, onSubmit, onStop }) {
    Object.assign(this, { input, sendButton: send, stopButton: stop });
    form.addEventListener("submit", (e) => { e.preventDefault(); onSubmit(); });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        onSubmit();
      }
    });
    input.addEventListener("input", () => this.autoresize());
    stop.addEventListener("click", onStop);
  }

  get text() { return this.input.value; }

  get enabled() { return !this.input.disabled; }

  // While a reply is being written, Stop stands where Send was.
  showBusy(busy) {
    this.stopButton.hidden = !busy;
    this.sendButton.hidden = busy;
  }

  // The sent text is stored: take it out of the box, keeping anything typed since.
  sent(text) {
    const typed = this.input.value;
    this.input.value = typed.startsWith(text) ? typed.slice(text.length).replace(/^\n/, "") : typed;
    this.autoresize();
  }

  autoresize() {
    this.input.style.height = "auto";
    this.input.style.height = Math.min(this.input.scrollHeight, 240) + "px";
  }

  focus() { this.input.focus(); }
}

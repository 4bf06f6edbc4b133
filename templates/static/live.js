// Live events from GET /ws: one WebSocket for the whole page, reconnected with backoff after
// a drop. Each server frame is re-dispatched as a DOM event named by its "type"; after every
// (re)connect the server's "hello" carries the current scan state, so views resync from it.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;

class Live extends EventTarget {
  constructor() {
    super();
    this.socket = null;
    this.delay = MIN_DELAY_MS;
    this.state = "idle";
    this.scan = null; // the last scan_progress body seen
    this.timer = null;
  }

  start() {
    if (this.socket || this.timer) return;
    this.connect();
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.state !== "open") this.reconnectNow();
    });
  }

  connect() {
    this.timer = null;
    this.setState("connecting");
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    let socket;
    try {
      socket = new WebSocket(url);
    } catch {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = MIN_DELAY_MS;
      this.setState("open");
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "hello") this.scan = message.scan;
      else if (message.type === "scan.progress") this.scan = message;
      else if (message.type === "scan.started") this.scan = { running: true, scan_id: message.scan_id, kind: message.kind, percent: 0, phase: "starting" };
      this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.retry();
    });
  }

  retry() {
    this.setState("closed");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(MAX_DELAY_MS, this.delay * 2);
  }

  reconnectNow() {
    if (this.state === "open" || this.state === "connecting") return;
    clearTimeout(this.timer);
    this.delay = MIN_DELAY_MS;
    this.connect();
  }

  setState(state) {
    this.state = state;
    const status = document.getElementById("live-status");
    if (status) {
      status.dataset.state = state;
      status.textContent = state === "open" ? "Live" : state === "connecting" ? "Connecting…" : "Offline";
      status.title = state === "open" ? "Live updates on" : "Live updates off: reconnecting";
    }
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }
}

export const live = new Live();

// The lightbox: a modal <dialog> showing one image or video at a time. ←/→ move, Esc closes
// (the dialog's own cancel), a horizontal swipe moves on touch screens, and the neighbours are
// preloaded. Videos use the browser's player, which seeks with Range requests; one it cannot
// play is offered as a download instead.
import { formatBytes, formatDate } from "./api.js";
import { h, clear } from "./dom.js";

// What a video the browser cannot decode (a codec or container it lacks, a damaged file)
// shows instead of a player stuck at 0:00.
function unplayable(item) {
  return h("div", { class: "lb-message", role: "status" },
    h("p", {}, "This file can't be played in the browser."),
    h("a", { class: "button", href: item.url, download: item.path }, `Download ${item.path}`));
}

function stageFor(item) {
  if (item.size === 0) return h("div", { class: "lb-message", role: "status" }, h("p", {}, "This file is empty (0 B): there is nothing to show."));
  if (item.kind === "image") return h("img", { src: item.url, alt: item.path, decoding: "async" });
  return h("video", { src: item.url, controls: true, preload: "metadata", playsinline: true, poster: item.thumbnailLarge,
    "aria-label": `Video ${item.path}`, onerror: (event) => {
      event.target.hidden = true; // the element stays (its error is on record); the person gets the file instead
      event.target.after(unplayable(item));
    } });
}

export class Lightbox {
  constructor(dialog, { onMove, onClose, onDelete }) {
    this.dialog = dialog;
    this.items = [];
    this.index = 0;
    this.onMove = onMove;
    this.onClose = onClose;
    this.onDelete = onDelete;
    this.handleKey = (event) => {
      if (!this.dialog.open || event.target?.tagName === "VIDEO" || event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key === "ArrowRight") { event.preventDefault(); this.move(1); }
      else if (event.key === "ArrowLeft") { event.preventDefault(); this.move(-1); }
    };
    this.handleClose = () => {
      this.stopMedia();
      this.onClose?.();
    };
    document.addEventListener("keydown", this.handleKey);
    dialog.addEventListener("close", this.handleClose);
    let start = null;
    dialog.addEventListener("pointerdown", (event) => {
      if (event.pointerType !== "mouse") start = { x: event.clientX, y: event.clientY };
    });
    dialog.addEventListener("pointerup", (event) => {
      if (!start) return;
      const dx = event.clientX - start.x;
      const dy = event.clientY - start.y;
      start = null;
      if (Math.abs(dx) > 50 && Math.abs(dx) > 1.5 * Math.abs(dy)) this.move(dx < 0 ? 1 : -1);
    });
    dialog.addEventListener("pointercancel", () => { start = null; });
  }

  destroy() {
    document.removeEventListener("keydown", this.handleKey);
    this.dialog.removeEventListener("close", this.handleClose);
    if (this.dialog.open) this.dialog.close();
    clear(this.dialog);
  }

  get isOpen() {
    return this.dialog.open;
  }

  show(items, index) {
    this.items = items;
    this.index = Math.max(0, Math.min(index, items.length - 1));
    this.draw();
    if (!this.dialog.open) this.dialog.showModal();
    this.dialog.querySelector(".lb-next")?.focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  move(step) {
    if (!this.items.length) return;
    this.index = (this.index + step + this.items.length) % this.items.length;
    this.draw();
    this.onMove?.(this.items[this.index], this.index);
  }

  stopMedia() {
    this.dialog.querySelectorAll("video").forEach((video) => video.pause());
  }

  draw() {
    this.stopMedia();
    const focused = ["lb-prev", "lb-next", "lb-close"].find((name) => document.activeElement?.classList.contains(name));
    const item = this.items[this.index];
    if (!item) return this.close();
    const previous = h("button", { type: "button", class: "lb-prev icon", "aria-label": "Previous", onclick: () => this.move(-1) }, "‹");
    const next = h("button", { type: "button", class: "lb-next icon", "aria-label": "Next", onclick: () => this.move(1) }, "›");
    clear(
      this.dialog,
      h("div", { class: "lb-bar" },
        h("h2", { class: "lb-title" }, item.path),
        h("span", { class: "lb-counter", "aria-live": "polite" }, `${this.index + 1} / ${this.items.length}`),
        h("button", { type: "button", class: "icon lb-close", "aria-label": "Close", onclick: () => this.close() }, "×")),
      h("div", { class: "lb-stage" }, previous, h("div", { class: "lb-media" }, stageFor(item)), next),
      h("div", { class: "lb-bar lb-footer" },
        h("span", { class: "meta" }, `${formatBytes(item.size)} · ${formatDate(item.mtime)}`),
        h("a", { class: "button secondary", href: item.url, download: item.path }, "Download file"),
        this.onDelete && h("button", { type: "button", class: "danger", onclick: () => this.onDelete(item, this.index) }, "Delete file")),
    );
    // the buttons were redrawn: keep keyboard focus where it was (or on the dialog's controls)
    this.dialog.querySelector(`.${focused || "lb-next"}`)?.focus();
    for (const offset of [1, -1]) {
      const neighbour = this.items[(this.index + offset + this.items.length) % this.items.length];
      if (neighbour && neighbour.kind === "image" && neighbour.size > 0) new Image().src = neighbour.url;
    }
  }
}

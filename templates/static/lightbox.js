// The lightbox: a modal <dialog> showing one image or video at a time. ←/→ move, Home/End go to
// the first/last file, Esc closes (the dialog's own cancel), f toggles fullscreen, i an info
// panel (dimensions, size, date, path), s a slideshow (the next file every 4 s, or every
// `data-slideshow-ms` of the dialog; any key or click stops it). Images zoom with the wheel, a
// double click or a pinch, and pan with a drag; a horizontal swipe moves on touch screens when
// not zoomed. The neighbours are preloaded. Videos use the browser's player, which seeks with
// Range requests; one it cannot play is offered as a download instead.
import { formatBytes, formatDate } from "./api.js";
import { h, clear } from "./dom.js";
import { viewerAction } from "./viewer-keys.js";

const SLIDESHOW_MS = 4000;
const MAX_ZOOM = 8;
const DOUBLE_CLICK_ZOOM = 2.5;

// What a video the browser cannot decode (a codec or container it lacks, a damaged file)
// shows instead of a player stuck at 0:00.
function unplayable(item) {
  return h("div", { class: "lb-message", role: "status" },
    h("p", {}, "This file can't be played in the browser."),
    h("a", { class: "button", href: item.url, download: item.path }, `Download ${item.path}`));
}

function stageFor(item, onDimensions) {
  if (item.size === 0) return h("div", { class: "lb-message", role: "status" }, h("p", {}, "This file is empty (0 B): there is nothing to show."));
  if (item.kind === "image") {
    return h("img", { src: item.url, alt: item.path, decoding: "async", draggable: "false", class: "zoomable",
      onload: (event) => onDimensions(event.target.naturalWidth, event.target.naturalHeight) });
  }
  return h("video", { src: item.url, controls: true, preload: "metadata", playsinline: true, poster: item.thumbnailLarge,
    "aria-label": `Video ${item.path}`,
    onloadedmetadata: (event) => onDimensions(event.target.videoWidth, event.target.videoHeight),
    onerror: (event) => {
      event.target.hidden = true; // the element stays (its error is on record); the person gets the file instead
      event.target.after(unplayable(item));
    } });
}

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

// Zoom and pan of one image: the wheel and a double click zoom about the pointer, a drag pans a
// zoomed image, two touching fingers pinch. The transform lives on the <img> alone.
class ZoomPan {
  constructor(img) {
    this.img = img;
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.pointers = new Map();
    this.pinch = null;
    this.gestured = false; // this touch panned or pinched: it is no swipe
    img.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.zoomAt(this.scale * Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
    }, { passive: false });
    img.addEventListener("dblclick", (event) => {
      this.zoomAt(this.scale > 1 ? 1 : DOUBLE_CLICK_ZOOM, event.clientX, event.clientY);
    });
    img.addEventListener("pointerdown", (event) => this.down(event));
    img.addEventListener("pointermove", (event) => this.moveTo(event));
    for (const type of ["pointerup", "pointercancel"]) img.addEventListener(type, (event) => this.up(event));
  }

  get zoomed() {
    return this.scale > 1;
  }

  down(event) {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    if (!this.pointers.size) this.gestured = false;
    this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    try {
      this.img.setPointerCapture(event.pointerId); // keep the drag when the pointer leaves the image
    } catch {
      // a pointer the browser no longer tracks: the gesture works without capture
    }
    if (this.pointers.size === 2) {
      const [a, b] = [...this.pointers.values()];
      this.pinch = { distance: Math.hypot(a.x - b.x, a.y - b.y) || 1, scale: this.scale };
      this.gestured = true;
    }
  }

  moveTo(event) {
    const last = this.pointers.get(event.pointerId);
    if (!last) return;
    const now = { x: event.clientX, y: event.clientY };
    this.pointers.set(event.pointerId, now);
    if (this.pinch && this.pointers.size === 2) {
      const [a, b] = [...this.pointers.values()];
      const distance = Math.hypot(a.x - b.x, a.y - b.y);
      this.zoomAt(this.pinch.scale * distance / this.pinch.distance, (a.x + b.x) / 2, (a.y + b.y) / 2);
    } else if (this.zoomed && this.pointers.size === 1) {
      this.x += now.x - last.x;
      this.y += now.y - last.y;
      this.gestured = true;
      this.apply();
    }
  }

  up(event) {
    this.pointers.delete(event.pointerId);
    if (this.pointers.size < 2) this.pinch = null;
  }

  // Zoom to `scale` keeping the image point under (cx, cy) where it is.
  zoomAt(scale, cx, cy) {
    const next = clamp(scale, 1, MAX_ZOOM);
    const rect = this.img.getBoundingClientRect();
    const ratio = next / this.scale;
    this.x += (cx - (rect.left + rect.width / 2)) * (1 - ratio);
    this.y += (cy - (rect.top + rect.height / 2)) * (1 - ratio);
    this.scale = next;
    this.apply();
  }

  apply() {
    if (this.scale <= 1) {
      this.scale = 1;
      this.x = this.y = 0;
    }
    // never pan the image off the stage: at most half its extra width/height either way
    const width = this.img.offsetWidth * (this.scale - 1) / 2;
    const height = this.img.offsetHeight * (this.scale - 1) / 2;
    this.x = clamp(this.x, -width, width);
    this.y = clamp(this.y, -height, height);
    this.img.style.transform = this.zoomed ? `translate(${this.x}px, ${this.y}px) scale(${this.scale})` : "";
    this.img.classList.toggle("zoomed", this.zoomed);
  }
}

export class Lightbox {
  constructor(dialog, { onMove, onClose, onDelete }) {
    this.dialog = dialog;
    this.items = [];
    this.index = 0;
    this.onMove = onMove;
    this.onClose = onClose;
    this.onDelete = onDelete;
    this.infoOpen = false;
    this.zoom = null;
    this.slideshowTimer = null;
    this.handleKey = (event) => {
      if (!this.dialog.open) return;
      const action = viewerAction(event);
      if (this.slideshowTimer && action !== "slideshow") {
        // any key stops the slideshow; Enter/Space on its own button are left to its click
        if (event.target?.closest?.(".lb-slideshow") && (event.key === "Enter" || event.key === " ")) return;
        this.stopSlideshow();
      }
      if (!action) return;
      event.preventDefault();
      this.act(action);
    };
    this.handleClose = () => {
      this.stopSlideshow();
      this.stopMedia();
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {}); // the viewer's fullscreen ends with it
      this.onClose?.();
    };
    document.addEventListener("keydown", this.handleKey);
    dialog.addEventListener("close", this.handleClose);
    let start = null;
    dialog.addEventListener("pointerdown", (event) => {
      if (this.slideshowTimer && !event.target.closest?.(".lb-slideshow")) this.stopSlideshow();
      if (event.pointerType !== "mouse") start = { x: event.clientX, y: event.clientY };
    });
    dialog.addEventListener("pointerup", (event) => {
      if (!start) return;
      if (this.zoom && (this.zoom.zoomed || this.zoom.gestured)) { start = null; return; } // a pan or pinch
      const dx = event.clientX - start.x;
      const dy = event.clientY - start.y;
      start = null;
      if (Math.abs(dx) > 50 && Math.abs(dx) > 1.5 * Math.abs(dy)) this.move(dx < 0 ? 1 : -1);
    });
    dialog.addEventListener("pointercancel", () => { start = null; });
  }

  destroy() {
    this.stopSlideshow();
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
    this.goTo((this.index + step + this.items.length) % this.items.length);
  }

  goTo(index) {
    if (!this.items.length || index === this.index) return;
    this.index = index;
    this.draw();
    this.onMove?.(this.items[this.index], this.index);
  }

  act(action) {
    if (action === "next") this.move(1);
    else if (action === "previous") this.move(-1);
    else if (action === "first") this.goTo(0);
    else if (action === "last") this.goTo(this.items.length - 1);
    else if (action === "fullscreen") this.toggleFullscreen();
    else if (action === "info") this.toggleInfo();
    else if (action === "slideshow") this.toggleSlideshow();
  }

  // The page goes fullscreen, not the <dialog>: the Fullscreen API refuses dialog elements, and the
  // modal viewer already covers the whole viewport, so it fills the screen.
  toggleFullscreen() {
    const done = document.fullscreenElement ? document.exitFullscreen() : document.documentElement.requestFullscreen?.();
    done?.catch(() => {}); // refused (no user gesture, not allowed): the viewer stays as it is
  }

  toggleInfo() {
    this.infoOpen = !this.infoOpen;
    const panel = this.dialog.querySelector(".lb-info");
    if (panel) panel.hidden = !this.infoOpen;
    this.dialog.querySelector(".lb-info-toggle")?.setAttribute("aria-pressed", String(this.infoOpen));
  }

  toggleSlideshow() {
    if (this.slideshowTimer) this.stopSlideshow();
    else this.startSlideshow();
  }

  startSlideshow() {
    const delay = Number(this.dialog.dataset.slideshowMs) || SLIDESHOW_MS;
    this.slideshowTimer = setInterval(() => this.move(1), delay);
    this.showSlideshowState();
  }

  stopSlideshow() {
    if (!this.slideshowTimer) return;
    clearInterval(this.slideshowTimer);
    this.slideshowTimer = null;
    this.showSlideshowState();
  }

  showSlideshowState() {
    const running = Boolean(this.slideshowTimer);
    if (running) this.dialog.dataset.slideshow = "running";
    else delete this.dialog.dataset.slideshow;
    this.dialog.querySelector(".lb-slideshow")?.setAttribute("aria-pressed", String(running));
  }

  stopMedia() {
    this.dialog.querySelectorAll("video").forEach((video) => video.pause());
  }

  draw() {
    this.stopMedia();
    const focused = ["lb-prev", "lb-next", "lb-close", "lb-info-toggle", "lb-slideshow", "lb-fullscreen"]
      .find((name) => document.activeElement?.classList.contains(name));
    const item = this.items[this.index];
    if (!item) return this.close();
    const previous = h("button", { type: "button", class: "lb-prev icon", "aria-label": "Previous", "aria-keyshortcuts": "ArrowLeft", onclick: () => this.move(-1) }, "‹");
    const next = h("button", { type: "button", class: "lb-next icon", "aria-label": "Next", "aria-keyshortcuts": "ArrowRight", onclick: () => this.move(1) }, "›");
    const dimensions = h("dd", { class: "lb-dimensions" }, item.size === 0 ? "—" : "…");
    const media = stageFor(item, (width, height) => { dimensions.textContent = `${width} × ${height} px`; });
    this.zoom = media.tagName === "IMG" ? new ZoomPan(media) : null;
    const toggle = (className, label, key, pressed, onclick) =>
      h("button", { type: "button", class: className, "aria-pressed": String(pressed), "aria-keyshortcuts": key, onclick }, label);
    clear(
      this.dialog,
      h("div", { class: "lb-bar" },
        h("h2", { class: "lb-title" }, item.path),
        h("span", { class: "lb-counter", "aria-live": "polite" }, `${this.index + 1} / ${this.items.length}`),
        toggle("lb-info-toggle", "Info", "I", this.infoOpen, () => this.toggleInfo()),
        toggle("lb-slideshow", "Slideshow", "S", Boolean(this.slideshowTimer), () => this.toggleSlideshow()),
        h("button", { type: "button", class: "lb-fullscreen", "aria-keyshortcuts": "F", onclick: () => this.toggleFullscreen() }, "Fullscreen"),
        h("button", { type: "button", class: "icon lb-close", "aria-label": "Close", onclick: () => this.close() }, "×")),
      h("div", { class: "lb-stage" }, previous, h("div", { class: "lb-media" }, media), next,
        h("aside", { class: "lb-info", "aria-label": "File information", hidden: !this.infoOpen },
          h("dl", {},
            h("dt", {}, "Dimensions"), dimensions,
            h("dt", {}, "Size"), h("dd", {}, formatBytes(item.size)),
            h("dt", {}, "Date"), h("dd", {}, formatDate(item.mtime)),
            h("dt", {}, "Path"), h("dd", { class: "lb-path" }, item.path)))),
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

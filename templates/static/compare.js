// Compare two images of a similar-images group, drawn at exactly the same size one over the
// other (B stretched onto A's box, so a resized copy lines up): "Overlay" shows B over A at the
// opacity the slider sets, "Split" shows A left and B right of a line the slider moves. Every
// control is a native one (selects, radios, a range that arrows, Home/End and Page Up/Down
// move) in the modal <dialog id="compare">: Esc closes it and focus returns to the opener.
import { formatBytes, mediaUrl, thumbUrl } from "./api.js";
import { h, clear } from "./dom.js";

const MODES = [
  ["overlay", "Overlay"],
  ["split", "Split"],
];

export const dimensions = (file) => `${file.width} × ${file.height}`;
export const describeImage = (file) => `${dimensions(file)} · ${file.format} · ${formatBytes(file.size)}`;

// the original file; one the browser cannot draw (TIFF, say) falls back to a large thumbnail
function picture(file, role) {
  const image = h("img", { class: `compare-${role}`, src: mediaUrl(file.path), alt: `${role.toUpperCase()}: ${file.path}`, decoding: "async" });
  image.addEventListener("error", () => {
    if (!image.src.includes("/thumb/")) image.src = thumbUrl(file.path, 1024);
  }, { once: true });
  return image;
}

export function openCompare(files, { first = 0, second = 1, opener } = {}) {
  const dialog = document.getElementById("compare");
  const chosen = { a: first, b: second };
  let mode = "overlay";
  const options = () => files.map((file, index) => h("option", { value: index }, `${index + 1}. ${file.path} (${dimensions(file)})`));
  const pickA = h("select", { id: "compare-a" }, options());
  const pickB = h("select", { id: "compare-b" }, options());
  const level = h("input", { type: "range", id: "compare-level", min: 0, max: 100, step: 1, value: 50 });
  const levelLabel = h("label", { for: "compare-level" });
  const radios = MODES.map(([value, text]) => {
    const radio = h("input", { type: "radio", name: "compare-mode", id: `compare-mode-${value}`, value, checked: value === mode });
    radio.addEventListener("change", () => {
      mode = value;
      draw();
    });
    return h("label", { for: `compare-mode-${value}` }, radio, text);
  });
  const swap = h("button", { type: "button", class: "secondary" }, "Swap A and B");
  const close = h("button", { type: "button", class: "secondary", id: "compare-close" }, "Close");
  const stage = h("div", { class: "compare-stage" });
  const captions = h("dl", { class: "compare-captions" });
  let imageA = null;
  let imageB = null;
  const divider = h("span", { class: "compare-divider", "aria-hidden": "true" });

  function load() {
    const [a, b] = [files[chosen.a], files[chosen.b]];
    pickA.value = String(chosen.a);
    pickB.value = String(chosen.b);
    imageA = picture(a, "a");
    imageB = picture(b, "b");
    // the box takes A's proportions; both images fill it
    stage.style.setProperty("--ratio", a.width && a.height ? String(a.width / a.height) : "1.333");
    clear(stage, imageA, imageB, divider);
    clear(captions,
      h("dt", {}, "A"), h("dd", {}, a.path, h("span", { class: "meta" }, ` · ${describeImage(a)}`)),
      h("dt", {}, "B"), h("dd", {}, b.path, h("span", { class: "meta" }, ` · ${describeImage(b)}`)));
    draw();
  }

  function draw() {
    const value = Number(level.value);
    const split = mode === "split";
    levelLabel.textContent = split ? "Split position (A left, B right)" : "Opacity of B over A";
    level.setAttribute("aria-valuetext", split ? `A left of ${value}%, B right of it` : `B at ${value}% opacity`);
    imageB.style.opacity = split ? "1" : String(value / 100);
    imageB.style.clipPath = split ? `inset(0 0 0 ${value}%)` : "none";
    divider.hidden = !split;
    divider.style.left = `${value}%`;
  }

  pickA.addEventListener("change", () => {
    chosen.a = Number(pickA.value);
    load();
  });
  pickB.addEventListener("change", () => {
    chosen.b = Number(pickB.value);
    load();
  });
  swap.addEventListener("click", () => {
    [chosen.a, chosen.b] = [chosen.b, chosen.a];
    load();
  });
  level.addEventListener("input", draw);
  close.addEventListener("click", () => dialog.close());

  clear(dialog,
    h("div", { class: "compare-bar" }, h("h2", { id: "compare-title" }, "Compare two images"), close),
    h("div", { class: "compare-controls" },
      h("div", { class: "field" }, h("label", { for: "compare-a" }, "Image A"), pickA),
      h("div", { class: "field" }, h("label", { for: "compare-b" }, "Image B"), pickB),
      h("fieldset", { class: "compare-modes" }, h("legend", {}, "Mode"), radios),
      h("div", { class: "field grow" }, levelLabel, level),
      swap),
    stage,
    captions);
  load();
  dialog.addEventListener("close", () => {
    clear(dialog); // stops loading the originals
    opener?.focus();
  }, { once: true });
  dialog.showModal();
  level.focus();
}

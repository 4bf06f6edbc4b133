// Small DOM helpers: an element builder (text is always set as text, never parsed as HTML),
// the alert area for errors, passing notices, and the confirmation dialog.

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// A whole-view state in place of a view that cannot be shown (an unknown site or model): a
// heading, a sentence and a way back, and none of the controls that could not work there.
export function showState(main, { title, text, back }) {
  clear(main, h("section", { class: "state" },
    h("h1", { tabindex: "-1" }, title),
    h("p", {}, text),
    h("p", {}, h("a", { class: "button", href: back.href, "data-nav": "" }, back.label))));
}

// An unknown site or model (the API's 404): the site when the server says the site is unknown.
export const isNotFound = (error) => error?.status === 404;
export const isUnknownSite = (error) => isNotFound(error) && /^Unknown site\b/.test(error.message);

// Errors stay until dismissed or until the person goes elsewhere.
export function showError(error, context) {
  if (error?.name === "AbortError") return;
  console.warn(error);
  const alerts = document.getElementById("alerts");
  const text = context ? `${context}: ${error.message || error}` : String(error.message || error);
  const close = h("button", { class: "icon", type: "button", "aria-label": "Dismiss this message" }, "×");
  const item = h("div", { class: "alert" }, h("p", {}, text), close);
  close.addEventListener("click", () => item.remove());
  alerts.append(item);
}

export function clearErrors() {
  document.getElementById("alerts").replaceChildren();
}

// A notice, with an optional action button. An action that restores from the trash names the
// trash ids it would restore (`action.trashIds`): once they are restored elsewhere (the Trash view,
// another tab), `retireRestoreNotices` takes the button away instead of offering a stale Restore.
export function notify(text, action) {
  const notices = document.getElementById("notices");
  const item = h("div", { class: "notice" }, h("p", {}, text));
  if (action?.trashIds?.length) item.dataset.trashIds = action.trashIds.join(" ");
  if (action) {
    item.append(
      h("button", {
        type: "button",
        class: "secondary",
        onclick: async () => {
          item.remove();
          await action.run();
        },
      }, action.label),
    );
  }
  notices.append(item);
  setTimeout(() => item.remove(), action ? 12000 : 6000);
}

// Notices offering to restore trash items that are no longer in the trash (`inTrash`: the ids
// still there) say so and lose their button.
export function retireRestoreNotices(inTrash) {
  for (const notice of document.querySelectorAll("#notices .notice[data-trash-ids]")) {
    const ids = notice.dataset.trashIds.split(" ");
    if (ids.some((id) => inTrash.has(id))) continue;
    notice.querySelector("button")?.remove();
    notice.append(h("p", { class: "muted" }, "Already restored."));
    delete notice.dataset.trashIds;
  }
}

export function hasRestoreNotices() {
  return document.querySelector("#notices .notice[data-trash-ids]") !== null;
}

// A modal confirmation (a real <dialog>): resolves true only when the person confirms.
// `items`, when given, are listed under the text (what the action would remove).
export function confirmAction({ title, text, items = [], confirm = "Confirm", danger = true }) {
  const dialog = document.getElementById("confirm");
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector("#confirm-text").textContent = text;
  const list = dialog.querySelector("#confirm-list");
  clear(list, items.map((item) => h("li", {}, item)));
  list.hidden = items.length === 0;
  const ok = dialog.querySelector("#confirm-ok");
  ok.textContent = confirm;
  ok.className = danger ? "danger" : "primary";
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    ok.focus();
  });
}

// Runs `load` when `sentinel` comes near the viewport (infinite scroll / progressive lists).
export function whenNear(sentinel, load, margin = "800px") {
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) load();
  }, { rootMargin: margin });
  observer.observe(sentinel);
  return () => observer.disconnect();
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function downloadButtons(label, urlFor, { pdf = true } = {}) {
  const formats = [
    ["zip", "ZIP", "The media files in one ZIP archive"],
    ["pdf", "PDF", "The images as one PDF"],
    ["pdfs-zip", "PDFs (ZIP)", "One PDF per model, in a ZIP archive"],
  ];
  return h(
    "div",
    { class: "downloads", role: "group", "aria-label": label },
    h("span", { class: "downloads-label" }, label),
    formats.map(([format, text, title]) =>
      format === "pdf" && !pdf
        ? h("button", { type: "button", class: "button", disabled: true, title: "No images to put in a PDF" }, text)
        : h("a", { class: "button", href: urlFor(format), download: "", title, dataset: { format } }, text),
    ),
  );
}

// The single-page app: the URL's query says where you are (/?site=S&model=M&file=F,
// /?view=duplicates|similar|trash|cache), links are intercepted and pushed onto history, so back,
// forward, reload and shared links all work. One view is mounted at a time; it may handle a
// URL change itself (update) and react to library.changed events from /ws.
import { api } from "./api.js";
import { clearErrors, hasRestoreNotices, notify, retireRestoreNotices, showError } from "./dom.js";
import { live } from "./live.js";
import { cacheView } from "./views/cache.js";
import { duplicatesView } from "./views/duplicates.js";
import { modelView } from "./views/model.js";
import { searchView } from "./views/search.js";
import { similarView } from "./views/similar.js";
import { siteView } from "./views/site.js";
import { sitesView } from "./views/sites.js";
import { trashView } from "./views/trash.js";

const VIEWS = { sites: sitesView, site: siteView, model: modelView, search: searchView, duplicates: duplicatesView, similar: similarView, trash: trashView, cache: cacheView };
const KEYS = ["view", "site", "model", "file", "q", "sort", "order", "kind", "threshold"];

function parse(url = location) {
  const params = new URLSearchParams(url.search);
  const route = {};
  for (const key of KEYS) if (params.get(key)) route[key] = params.get(key);
  if (!route.view || !VIEWS[route.view]) route.view = route.model && route.site ? "model" : route.site ? "site" : "sites";
  return route;
}

function href(route) {
  const params = new URLSearchParams();
  for (const key of KEYS) {
    if (key === "view" && ["sites", "site", "model"].includes(route.view)) continue;
    if (route[key]) params.set(key, route[key]);
  }
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

const main = document.getElementById("main");
let current = null; // { route, view }
let generation = 0;

// history.back() is asynchronous: a link followed before its popstate arrives would be undone by
// it (the lightbox closed with Esc, then a click at once, landed back on the old model). So a
// back in flight is awaited by every navigation; the timer only guards against a lost event.
let backInFlight = null;

function goBack() {
  backInFlight = new Promise((resolve) => {
    const settle = () => {
      clearTimeout(timer);
      window.removeEventListener("popstate", settle);
      backInFlight = null;
      resolve();
    };
    const timer = setTimeout(settle, 1000);
    window.addEventListener("popstate", settle);
  });
  history.back();
}

async function go(url) {
  while (backInFlight) await backInFlight;
  if (url === location.pathname + location.search) return;
  history.pushState(null, "", url);
  window.scrollTo(0, 0);
  render();
}

const ctx = {
  href,
  route: () => parse(),
  navigate: (route) => go(href(route)),
  back: goBack,
  push(route) {
    history.pushState(null, "", href(route));
  },
  replace(route) {
    history.replaceState(null, "", href(route));
  },
  error: (error, context) => showError(error, context),
  async restore(id) {
    try {
      const result = await api("/api/trash/restore", { method: "POST", params: { id } });
      notify("Restored.");
      // redraw now, without waiting for the live channel's library.changed
      current?.view?.onLibraryChanged?.({ site: result.item?.site, model: result.item?.model });
    } catch (error) {
      if (error.status === 404) notify("Already restored.");  // restored elsewhere meanwhile
      else showError(error, "Could not restore");
    }
  },
};

// A restore elsewhere (the Trash view, another tab or instance) retires stale Restore buttons.
async function refreshRestoreNotices() {
  if (!hasRestoreNotices()) return;
  try {
    const body = await api("/api/trash");
    retireRestoreNotices(new Set(body.items.map((item) => item.id)));
  } catch {
    // the next change tries again; a stale button still answers "Already restored."
  }
}

function markNavigation(route) {
  const section = ["duplicates", "similar", "trash", "cache"].includes(route.view) ? route.view : "sites";
  for (const link of document.querySelectorAll("nav a[data-section]")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function render({ focus = true } = {}) {
  const route = parse();
  markNavigation(route);
  if (current?.view?.update?.(route)) {
    current.route = route;
    return;
  }
  const mine = ++generation;
  current?.view?.destroy?.();
  current = null;
  clearErrors();
  main.setAttribute("aria-busy", "true");
  try {
    const view = await VIEWS[route.view](main, route, ctx);
    if (mine !== generation) {
      view?.destroy?.();
      return;
    }
    current = { route, view };
    if (focus) main.querySelector("h1")?.focus({ preventScroll: true });
  } catch (error) {
    if (mine === generation) {
      showError(error);
      if (!main.querySelector("h1")) main.replaceChildren();
    }
  } finally {
    if (mine === generation) main.removeAttribute("aria-busy");
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  go(link.getAttribute("href"));
});
// a GET form marked data-nav (the header's search) navigates inside the app instead of reloading it
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-nav]");
  if (!form || event.defaultPrevented) return;
  event.preventDefault();
  const query = new URLSearchParams(new FormData(form)).toString();
  go(`${form.getAttribute("action")}?${query}`);
});
window.addEventListener("popstate", () => render());

// a burst of deletes (a duplicate clean-up) redraws once, not once per file
let changeTimer = null;
let changes = [];
live.addEventListener("library.changed", (event) => {
  changes.push(event.detail);
  clearTimeout(changeTimer);
  changeTimer = setTimeout(() => {
    const batch = changes;
    changes = [];
    const seen = new Set();
    for (const change of batch) {
      const key = `${change.site}\u0000${change.model}`;
      if (!seen.has(key)) {
        seen.add(key);
        current?.view?.onLibraryChanged?.(change);
      }
    }
    refreshRestoreNotices();
  }, 250);
});
// Keyboard: "/" focuses the search box (where there is one), "?" lists the shortcuts. Never
// while typing in a field, with a modifier held, or over an open dialog.
document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest?.("input, textarea, select, [contenteditable]") || document.querySelector("dialog[open]")) return;
  if (event.key === "/") {
    // the view's own search (a site's models) first, else the header's search of the whole library
    const search = main.querySelector("input[type=search]") || document.getElementById("header-search");
    if (!search) return;
    event.preventDefault();
    search.focus();
    search.select();
  } else if (event.key === "?") {
    event.preventDefault();
    document.getElementById("shortcuts").showModal();
  }
});

// The theme toggle cycles auto -> light -> dark; the page's theme script applies the stored choice
// (before the first paint on every load, and at once on `themechange`).
const THEMES = ["auto", "light", "dark"];
const themeToggle = document.getElementById("theme-toggle");

function showTheme() {
  const choice = document.documentElement.dataset.themeChoice || "auto";
  themeToggle.textContent = `Theme: ${choice}`;
}

themeToggle.addEventListener("click", () => {
  const current = document.documentElement.dataset.themeChoice || "auto";
  const next = THEMES[(THEMES.indexOf(current) + 1) % THEMES.length];
  try {
    if (next === "auto") localStorage.removeItem("theme");
    else localStorage.setItem("theme", next);
  } catch {
    // storage refused: the choice holds for this page, not the next visit
  }
  dispatchEvent(new CustomEvent("themechange", { detail: next }));
  showTheme();
});
addEventListener("storage", showTheme);
showTheme();

live.start();
render({ focus: false });

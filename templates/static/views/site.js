// A site's models: a grid of cover thumbnails with search-as-you-type, sort, selection for
// downloads, and infinite scroll (pages of PAGE models fetched as the end comes near; cards
// are cheap to lay out thanks to content-visibility, and covers load lazily).
import { api, downloadUrl, formatBytes, formatNumber, plural, withWidth } from "../api.js";
import { h, clear, debounce, downloadButtons, isNotFound, showState, whenNear } from "../dom.js";

const PAGE = 60;
const EAGER = 8; // covers above the fold: requested at once, before layout
const SORTS = [
  ["name:asc", "Name (A–Z)"],
  ["name:desc", "Name (Z–A)"],
  ["files:desc", "Most files"],
  ["bytes:desc", "Largest"],
  ["mtime:desc", "Newest"],
  ["mtime:asc", "Oldest"],
];

export async function siteView(main, route, ctx) {
  const site = route.site;
  document.title = `${site} · archive-catalog`;
  let query = { q: route.q || "", sort: route.sort || "name", order: route.order || "asc" };
  let page = 0;
  let total = null;
  let loading = null;
  let controller = null;
  const selected = new Set();

  const search = h("input", {
    type: "search", id: "model-search", name: "q", value: query.q, placeholder: "Search models",
    autocomplete: "off", spellcheck: "false",
  });
  const sort = h(
    "select", { id: "model-sort", name: "sort" },
    SORTS.map(([value, label]) => h("option", { value, selected: value === `${query.sort}:${query.order}` }, label)),
  );
  const count = h("p", { class: "count", role: "status" });
  const grid = h("ul", { class: "model-grid", "aria-label": `Models of ${site}` });
  const more = h("button", { type: "button", class: "secondary load-more", hidden: true }, "Load more");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const selectionCount = h("span", { class: "selection-count" });
  const selectionBar = h(
    "div", { class: "selection-bar", hidden: true },
    selectionCount,
    h("div", { class: "selection-downloads" }),
    h("button", { type: "button", class: "secondary", onclick: () => clearSelection() }, "Clear selection"),
  );

  function updateSelection() {
    selectionBar.hidden = selected.size === 0;
    selectionCount.textContent = `${plural(selected.size, "model")} selected`;
    const models = [...selected];
    clear(selectionBar.querySelector(".selection-downloads"),
      downloadButtons("Download selection", (format) => downloadUrl(site, models, format)));
  }

  function clearSelection() {
    selected.clear();
    grid.querySelectorAll("input[type=checkbox]").forEach((box) => { box.checked = false; });
    updateSelection();
  }

  function card(model, index) {
    const eager = page === 1 && index < EAGER;
    const cover = model.thumbnail
      ? h("img", {
        src: withWidth(model.thumbnail, 320, model.mtime), alt: `Cover of ${model.name}`, width: 320, height: 240, decoding: "async",
        loading: eager ? "eager" : "lazy", fetchpriority: eager && index < 4 ? "high" : null,
      })
      : h("span", { class: "no-cover" }, "No preview");
    const box = h("input", {
      type: "checkbox", class: "select", "aria-label": `Select ${model.name}`, checked: selected.has(model.name),
      onchange: (event) => {
        if (event.target.checked) selected.add(model.name);
        else selected.delete(model.name);
        updateSelection();
      },
    });
    const counts = [plural(model.images, "image")];
    if (model.videos) counts.push(plural(model.videos, "video"));
    return h("li", { class: "model-card" },
      h("a", { href: ctx.href({ site, model: model.name }), "data-nav": "", class: "cover-link", "aria-label": model.name },
        h("span", { class: "cover" }, cover),
        h("span", { class: "model-name" }, model.name)),
      h("span", { class: "meta" }, `${counts.join(" · ")} · ${formatBytes(model.bytes)}`),
      box);
  }

  async function loadPage() {
    if (loading || (total !== null && page * PAGE >= total)) return; // the running load reports its own errors
    const signal = controller.signal;
    const mine = (async () => {
      try {
        const body = await api("/api/models", {
          params: { site, page: page + 1, limit: PAGE, sort: query.sort, order: query.order, q: query.q }, signal,
        });
        if (signal.aborted) return; // a newer search or sort replaced this one
        page += 1;
        total = body.total;
        grid.append(...body.models.map((model, index) => card(model, index)));
        const shown = grid.children.length;
        count.textContent = total === 0
          ? (query.q ? `No model matches “${query.q}”.` : "This site has no models.")
          : `${formatNumber(shown)} of ${plural(total, "model")}${query.q ? ` matching “${query.q}”` : ""}`;
        more.hidden = shown >= total;
        more.textContent = `Load more (${formatNumber(total - shown)} left)`;
      } finally {
        if (loading === mine) loading = null; // a restart may have started a newer load
      }
    })();
    loading = mine;
    return mine;
  }

  async function restart() {
    controller?.abort();
    controller = new AbortController();
    page = 0;
    total = null;
    loading = null;
    grid.replaceChildren();
    await loadPage();
  }

  function syncUrl() {
    ctx.replace({ site, q: query.q, sort: query.sort === "name" ? "" : query.sort, order: query.order === "asc" ? "" : query.order });
  }

  search.addEventListener("input", debounce(() => {
    query = { ...query, q: search.value.trim() };
    syncUrl();
    restart().catch(ctx.error);
  }, 150));
  sort.addEventListener("change", () => {
    const [s, o] = sort.value.split(":");
    query = { ...query, sort: s, order: o };
    syncUrl();
    restart().catch(ctx.error);
  });
  more.addEventListener("click", () => loadPage()?.catch(ctx.error));
  updateSelection();
  try {
    await restart(); // the first page before the page is drawn: an unknown site never shows its controls
  } catch (error) {
    if (!isNotFound(error)) throw error;
    showState(main, {
      title: `No site named “${site}”`,
      text: "The library has no site folder by that name: it may have been renamed, moved to the trash, or mistyped.",
      back: { href: ctx.href({}), label: "Back to the sites" },
    });
    ctx.error(error);
    return {};
  }
  clear(
    main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: ctx.href({}), "data-nav": "" }, "Sites"), " › ", h("span", { "aria-current": "page" }, site)),
    h("div", { class: "heading" },
      h("h1", { tabindex: "-1" }, site),
      downloadButtons("Download site", (format) => downloadUrl(site, [], format))),
    h("div", { class: "toolbar", role: "search" },
      h("span", { class: "field grow" }, h("label", { for: "model-search" }, "Search"), search),
      h("span", { class: "field" }, h("label", { for: "model-sort" }, "Sort"), sort)),
    count, grid, more, sentinel, selectionBar,
  );
  const stopObserving = whenNear(sentinel, () => loadPage()?.catch(ctx.error));
  return {
    destroy() {
      stopObserving();
      controller?.abort();
    },
    update(next) {
      // back/forward between searches of the same site: refetch without rebuilding the page
      if (next.view !== "site" || next.site !== site) return false;
      query = { q: next.q || "", sort: next.sort || "name", order: next.order || "asc" };
      search.value = query.q;
      sort.value = `${query.sort}:${query.order}`;
      restart().catch(ctx.error);
      return true;
    },
    onLibraryChanged(event) {
      if (event.site === site) restart().catch(ctx.error);
    },
  };
}

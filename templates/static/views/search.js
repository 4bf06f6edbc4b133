// Search across every site (/?view=search&q=…): models whose name matches, with their covers,
// linking to the model, and media files whose file name matches, linking to their model with
// the viewer open on that file. One request to /api/search; the header's search box leads here.
import { api, formatBytes, formatNumber, plural, withWidth } from "../api.js";
import { h, clear } from "../dom.js";

const LIMIT = 100; // per kind; the totals say how many more matched

function modelCard(model, ctx) {
  const cover = model.thumbnail
    ? h("img", { src: withWidth(model.thumbnail, 320, model.mtime), alt: `Cover of ${model.name}`, width: 320, height: 240, loading: "lazy", decoding: "async" })
    : h("span", { class: "no-cover" }, "No preview");
  const counts = [plural(model.images, "image")];
  if (model.videos) counts.push(plural(model.videos, "video"));
  return h("li", { class: "model-card" },
    h("a", { href: ctx.href({ site: model.site, model: model.name }), "data-nav": "", class: "cover-link", "aria-label": `${model.name} in ${model.site}` },
      h("span", { class: "cover" }, cover),
      h("span", { class: "model-name" }, model.name)),
    h("span", { class: "meta" }, `${model.site} · ${counts.join(" · ")} · ${formatBytes(model.bytes)}`));
}

function fileTile(file, ctx) {
  return h("li", { class: "file-hit" },
    h("a", { href: ctx.href({ site: file.site, model: file.model, file: file.path }), "data-nav": "", class: "tile-link", "aria-label": `${file.path} in ${file.model} (${file.site})` },
      h("span", { class: `tile ${file.kind}` },
        h("img", { src: withWidth(file.thumbnail, 320, file.mtime), alt: file.path, width: 320, height: 240, loading: "lazy", decoding: "async" }),
        file.kind === "video" ? h("span", { class: "badge", "aria-hidden": "true" }, "▶ video") : null),
      h("span", { class: "tile-caption" },
        h("span", { class: "tile-name", title: file.path }, file.path),
        h("span", { class: "tile-meta" }, `${file.site} › ${file.model} · ${formatBytes(file.size)}`))));
}

function counted(shown, total, word) {
  return shown < total ? `${formatNumber(shown)} of ${plural(total, word)}` : plural(total, word);
}

export async function searchView(main, route, ctx) {
  const box = document.getElementById("header-search");
  const q = (route.q || "").trim();
  if (box && box.value !== q) box.value = q;
  document.title = q ? `“${q}” · Search · archive-catalog` : "Search · archive-catalog";
  if (!q) {
    clear(main, h("h1", { tabindex: "-1" }, "Search"),
      h("p", { class: "meta" }, "Type in the search box above to find models and files in every site."));
    return {};
  }
  async function load() {
    const body = await api("/api/search", { params: { q, limit: LIMIT } });
    const models = body.models.length
      ? h("ul", { class: "model-grid", "aria-label": "Matching models" }, body.models.map((model) => modelCard(model, ctx)))
      : h("p", { class: "empty" }, "No model name matches.");
    const files = body.files.length
      ? h("ul", { class: "media-grid", "aria-label": "Matching files" }, body.files.map((file) => fileTile(file, ctx)))
      : h("p", { class: "empty" }, "No file name matches.");
    clear(main,
      h("h1", { tabindex: "-1" }, `Search: “${q}”`),
      h("p", { class: "count", role: "status" },
        `${plural(body.total_models, "model")} and ${plural(body.total_files, "file")} match.`,
        body.complete ? "" : " A very large site is only partly searched by file name."),
      h("section", { "aria-labelledby": "search-models" },
        h("h2", { id: "search-models" }, `Models (${counted(body.models.length, body.total_models, "model")})`), models),
      h("section", { "aria-labelledby": "search-files" },
        h("h2", { id: "search-files" }, `Files (${counted(body.files.length, body.total_files, "file")})`), files));
  }

  await load();
  return {
    destroy() {
      if (box && document.activeElement !== box) box.value = "";
    },
    onLibraryChanged: () => load().catch(ctx.error),
  };
}

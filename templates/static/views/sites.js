// Sites: every top-level folder of the library with its counts.
import { api, formatBytes, plural } from "../api.js";
import { h, clear } from "../dom.js";

export async function sitesView(main, route, ctx) {
  document.title = "Sites · archive-catalog";
  const list = h("ul", { class: "site-list" });
  clear(main, h("h1", { tabindex: "-1" }, "Sites"), list);
  async function load() {
    const body = await api("/api/sites");
    if (!body.sites.length) {
      clear(list, h("li", { class: "empty" }, "The library holds no sites yet."));
      return;
    }
    clear(
      list,
      body.sites.map((site) =>
        h(
          "li",
          { class: "site-card" },
          h("a", { href: ctx.href({ site: site.name }), "data-nav": "" }, h("span", { class: "site-name" }, site.name)),
          h("span", { class: "meta" }, `${plural(site.models, "model")} · ${plural(site.files, "file")} · ${formatBytes(site.bytes)}`),
        ),
      ),
    );
  }
  await load();
  return { onLibraryChanged: () => load().catch(ctx.error) };
}

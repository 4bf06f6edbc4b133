// Cache: the figures of /api/cache_stats, one card per cache, and a button that clears them.
import { api, formatBytes, formatNumber } from "../api.js";
import { h, clear, notify } from "../dom.js";

const TITLES = {
  models_cache: "Site listings",
  model_info_cache: "Model details",
  media_list_cache: "Media lists",
  download_cache: "Downloads",
  hash_cache: "Hashes (duplicate scan)",
  thumbnail_cache: "Thumbnails",
};

function value(key, v) {
  if (typeof v === "number") {
    if (/bytes/.test(key)) return formatBytes(v);
    if (key === "ttl") return `${formatNumber(v)} s`;
    return formatNumber(v);
  }
  return v === null || v === undefined ? "–" : String(v);
}

export async function cacheView(main, route, ctx) {
  document.title = "Cache · archive-catalog";
  const cards = h("div", { class: "cache-cards" });
  const button = h("button", { type: "button", class: "danger", id: "clear-cache" }, "Clear caches");
  clear(main, h("div", { class: "heading" }, h("h1", { tabindex: "-1" }, "Cache"), button),
    h("p", { class: "meta" }, "Caches only make things faster: clearing them deletes no media."), cards);

  async function load() {
    const stats = await api("/api/cache_stats");
    clear(cards, Object.entries(stats).map(([name, figures]) => {
      const rows = figures && typeof figures === "object" ? Object.entries(figures) : [["value", figures]];
      const lookups = (figures?.hits || 0) + (figures?.misses || 0);
      return h("section", { class: "cache-card", "aria-labelledby": `cache-${name}` },
        h("h2", { id: `cache-${name}` }, TITLES[name] || name, " ", h("code", {}, name)),
        h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, value(k, v))]),
          lookups ? [h("dt", {}, "hit rate"), h("dd", {}, `${Math.round((100 * figures.hits) / lookups)}%`)] : null));
    }));
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await api("/api/clear_cache", { method: "POST" });
      notify(result.message || "Caches cleared.");
      await load();
    } catch (error) {
      ctx.error(error, "Could not clear the caches");
    } finally {
      button.disabled = false;
    }
  });
  await load();
  return {};
}

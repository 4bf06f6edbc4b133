// Cache: the figures of /api/cache_stats, one card per cache under a name a person can read
// (any cache the server adds later gets one from its key), and a button that clears them all,
// the duplicate scan's remembered hashes included. Sizes are decimal (KB/MB/GB = 10^3/10^6/10^9).
import { api, formatBytes, formatDuration, formatNumber } from "../api.js";
import { h, clear, notify } from "../dom.js";

const TITLES = {
  models_cache: "Site listings",
  model_info_cache: "Model details",
  media_list_cache: "Media lists",
  site_index_cache: "Site walks",
  download_cache: "Downloads",
  hash_cache: "Hashes (duplicate scan)",
  thumbnail_cache: "Thumbnails",
  memory_caches: "Memory caches",
};

const FIGURES = {
  size: "entries",
  max_size: "at most",
  max_bytes: "size limit",
  ttl: "kept for",
  in_flight: "being made",
  max_concurrent: "made at once",
  video_frames: "video frames by",
};

// "site_index_cache" -> "Site index": a readable name for a key without one of its own
const readable = (key) => key.replace(/_cache$/, "").replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());
const title = (key) => TITLES[key] || readable(key);

function value(key, v) {
  if (typeof v === "number") {
    if (/bytes/.test(key)) return formatBytes(v);
    if (key === "ttl") return formatDuration(v);
    return formatNumber(v);
  }
  return v === null || v === undefined ? "–" : String(v);
}

export async function cacheView(main, route, ctx) {
  document.title = "Cache · archive-catalog";
  const cards = h("div", { class: "cache-cards" });
  const button = h("button", { type: "button", class: "danger", id: "clear-cache" }, "Clear caches and scan hashes");
  clear(main, h("div", { class: "heading" }, h("h1", { tabindex: "-1" }, "Cache"), button),
    h("p", { class: "meta" },
      "Caches only make things faster: clearing them deletes no media. It also forgets the duplicate scan's file hashes, ",
      "so the next scan reads every file again."),
    cards);

  async function load() {
    const stats = await api("/api/cache_stats");
    clear(cards, Object.entries(stats).map(([name, figures]) => {
      const rows = figures && typeof figures === "object" ? Object.entries(figures) : [["value", figures]];
      const lookups = (figures?.hits || 0) + (figures?.misses || 0);
      return h("section", { class: "cache-card", "aria-labelledby": `cache-${name}` },
        h("h2", { id: `cache-${name}` }, title(name), " ", h("code", {}, name)),
        h("dl", {}, rows.map(([k, v]) => [h("dt", {}, FIGURES[k] || k.replaceAll("_", " ")), h("dd", {}, value(k, v))]),
          lookups ? [h("dt", {}, "hit rate"), h("dd", {}, `${Math.round((100 * figures.hits) / lookups)}%`)] : null));
    }));
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await api("/api/clear_cache", { method: "POST" });
      const cleared = Object.keys(result).filter((key) => result[key] === "cleared").map((key) => title(key).toLowerCase());
      notify(cleared.length ? `Cleared: ${cleared.join(", ")}.` : "Caches cleared.");
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

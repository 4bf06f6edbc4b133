// Duplicates: start or cancel a scan and follow it live (the shared scan panel), then review
// the groups, largest waste first, side by side, and keep one copy of each (the others go to
// the trash, with an Undo), or clean up every group at once by a rule (preview first, then confirm).
import { ApiError, api, formatBytes, formatDate, formatDuration, mediaUrl, plural, thumbUrl } from "../api.js";
import { bulkPanel, groupList, keepOne, pathWithModelLink } from "../cleanup.js";
import { h, clear, confirmAction } from "../dom.js";
import { scanPanel } from "../scan-panel.js";

const RULES = [
  ["oldest", "the oldest copy"],
  ["newest", "the newest copy"],
  ["shortest_path", "the copy with the shortest path"],
  ["in_site", "the copy in a site"],
  ["in_model", "the copy in a model"],
];
const WHERE = "duplicates"; // "Scan again to see them among the duplicates"

export async function duplicatesView(main, route, ctx) {
  document.title = "Duplicates · archive-catalog";
  const results = h("section", { class: "results", "aria-labelledby": "results-title" });
  let resultsId = null;
  const panel = scanPanel({
    kind: "exact",
    label: "Duplicate scan",
    ctx,
    onFinished: (scanId) => {
      if (scanId !== resultsId) loadResults().catch(ctx.error);
    },
  });

  clear(main, h("h1", { tabindex: "-1" }, "Duplicates"), panel.element, results);

  async function loadResults() {
    let body;
    try {
      body = await api("/api/duplicates");
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        clear(results, h("h2", { id: "results-title" }, "Results"),
          h("p", {}, error.message.startsWith("No route") ? "Duplicate results are not available on this server yet." : "No scan has finished yet: start one above."));
        return;
      }
      throw error;
    }
    resultsId = body.scan_id;
    drawResults(body);
  }

  function drawResults(body) {
    const groups = body.groups || [];
    const summary = h("p", { class: "meta", id: "dupes-summary" });
    function updateSummary() {
      const wasted = groups.reduce((sum, g) => sum + g.wasted, 0);
      const s = body.stats || {};
      summary.textContent = groups.length
        ? `${plural(groups.length, "group")} of identical files · ${formatBytes(wasted)} could be freed · scanned ${plural(s.files || 0, "file")} (${formatBytes(s.bytes || 0)}) in ${formatDuration(s.duration_s)}, finished ${formatDate(body.finished_at)}`
        : `No duplicates: scanned ${plural(s.files || 0, "file")} (${formatBytes(s.bytes || 0)}), finished ${formatDate(body.finished_at)}.`;
    }
    updateSummary();
    const bulk = groups.length
      ? bulkPanel({ ctx, endpoint: "/api/duplicates/resolve", rules: RULES, where: WHERE, done: loadResults }).element
      : null;
    clear(results, h("h2", { id: "results-title" }, "Results"), summary, bulk, groupList(groups, groupView, updateSummary));
  }

  function groupView(group, removed) {
    const copies = group.files.length;
    const files = h("ul", { class: "dupe-files" });
    group.files.forEach((path, index) => {
      files.append(h("li", { class: "dupe" },
        h("a", { href: mediaUrl(path), class: "dupe-thumb", target: "_blank", rel: "noopener" },
          h("img", { src: thumbUrl(path, 320), alt: path, loading: "lazy", decoding: "async", width: 320, height: 240 })),
        pathWithModelLink(ctx, path),
        h("p", { class: "meta" }, formatBytes(group.size), " · ", h("span", { class: "date" }, formatDate(group.mtimes?.[index]))),
        h("button", { type: "button", class: "primary", "aria-label": `Keep this one: ${path}`, onclick: () => keep(group, path, removed) }, "Keep this one")));
    });
    return h("li", { class: "group" },
      h("h3", { tabindex: "-1" }, `${copies} copies of ${formatBytes(group.size)} · ${formatBytes(group.wasted)} wasted`),
      files);
  }

  async function keep(group, path, removed) {
    const others = group.files.filter((p) => p !== path);
    const ok = await confirmAction({
      title: "Keep this copy?",
      text: `Keep ${path} and move ${plural(others.length, "other copy", "other copies")} to the trash. Emptying the trash then frees ${formatBytes(group.size * others.length)}.`,
      confirm: "Move the others to trash",
    });
    if (ok) await keepOne(ctx, { endpoint: "/api/duplicates/delete", body: { keep: path, delete: others }, where: WHERE, removed });
  }

  await panel.sync();
  await loadResults();
  return { destroy: () => panel.destroy() };
}

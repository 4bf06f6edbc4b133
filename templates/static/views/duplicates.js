// Duplicates: start or cancel a scan, follow it live (a real <progress> driven by /ws
// events, resynced from the "hello" after a reconnect), then review the groups, largest
// waste first, side by side, and keep one copy of each (the others go to the trash, with an
// Undo), or clean up every group at once by a rule (preview first, then confirm).
import {
  ApiError, api, formatBytes, formatDate, formatDuration, formatNumber, mediaUrl, modelOf, plural, restoreItems, thumbUrl,
} from "../api.js";
import { h, clear, confirmAction, notify } from "../dom.js";
import { live } from "../live.js";

const GROUPS_SHOWN = 30;
const MAX_RESOLVE_GROUPS = 5000; // per request (the server's bound)
const RULES = [
  ["oldest", "the oldest copy"],
  ["newest", "the newest copy"],
  ["shortest_path", "the copy with the shortest path"],
  ["in_site", "the copy in a site"],
  ["in_model", "the copy in a model"],
];

// one wording per server phase, the same live (/ws), polled (/api/scan_progress) and after a reload
const PHASES = {
  idle: "idle",
  walking: "listing files",
  hashing: "comparing same-size files",
  done: "finished",
  cancelled: "cancelled",
  failed: "failed",
};
const phaseLabel = (phase) => PHASES[phase] || phase || PHASES.walking;

// a path that may wrap after each "/", never inside a name
const breakable = (text) => text.split("/").flatMap((part, i, all) => (i < all.length - 1 ? [`${part}/`, h("wbr")] : [part]));

export async function duplicatesView(main, route, ctx) {
  document.title = "Duplicates · archive-catalog";
  const start = h("button", { type: "button", class: "primary", id: "scan-start" }, "Start scan");
  const cancel = h("button", { type: "button", class: "secondary", id: "scan-cancel", disabled: true }, "Cancel");
  const bar = h("progress", { id: "scan-progress", max: 100, value: 0, "aria-labelledby": "scan-progress-label" });
  const phase = h("span", { id: "scan-progress-label" }, "No scan running");
  const details = h("dl", { class: "scan-details" });
  const results = h("section", { class: "results", "aria-labelledby": "results-title" });
  let shown = GROUPS_SHOWN;
  let lastSample = null; // for the rate: {t, bytes}
  let rate = null;
  let resultsId = null;

  clear(
    main,
    h("h1", { tabindex: "-1" }, "Duplicates"),
    h("section", { class: "scan-panel", "aria-label": "Duplicate scan" },
      h("div", { class: "actions" }, start, cancel),
      h("div", { class: "progress-row" }, phase, bar),
      details),
    results,
  );

  function detail(label, value) {
    return [h("dt", {}, label), h("dd", {}, value)];
  }

  function showProgress(p) {
    if (!p) return;
    const running = Boolean(p.running);
    start.disabled = running;
    cancel.disabled = !running;
    const percent = Math.max(0, Math.min(100, Number(p.percent) || 0));
    bar.value = running || percent ? percent : 0;
    bar.setAttribute("aria-valuetext", `${Math.round(percent)}%`);
    const now = performance.now();
    if (running && typeof p.bytes_done === "number") {
      if (lastSample && now > lastSample.t && p.bytes_done >= lastSample.bytes) {
        const sample = ((p.bytes_done - lastSample.bytes) * 1000) / (now - lastSample.t);
        rate = rate === null ? sample : 0.7 * rate + 0.3 * sample;
      }
      lastSample = { t: now, bytes: p.bytes_done };
    }
    if (!running) lastSample = null;
    phase.textContent = running
      ? `Scanning: ${phaseLabel(p.phase)} · ${Math.round(percent)}%`
      : p.scan_id ? `Last scan ${phaseLabel(p.phase)} · ${Math.round(percent)}%` : "No scan running";
    // while listing: the files found so far (no total yet); then the same-size files compared
    const walking = running && p.phase === "walking";
    clear(details,
      walking
        ? detail("Files found", formatNumber(p.files_found || 0))
        : detail("Files compared", `${formatNumber(p.checked || 0)} / ${formatNumber(p.total || 0)}`),
      detail("Bytes", `${formatBytes(p.bytes_done || 0)} / ${formatBytes(p.bytes_total || 0)}`),
      detail("Rate", running && rate !== null ? `${formatBytes(rate)}/s` : "–"),
      detail("ETA", running ? formatDuration(p.eta_s) : "–"),
      detail("Files from the hash cache", formatNumber(p.cache_hits || 0)));
  }

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
    const list = h("ol", { class: "groups" });
    const moreButton = h("button", { type: "button", class: "secondary" }, "Show more groups");
    const summary = h("p", { class: "meta", id: "dupes-summary" });
    function updateSummary() {
      const wasted = groups.reduce((sum, g) => sum + g.wasted, 0);
      const s = body.stats || {};
      summary.textContent = groups.length
        ? `${plural(groups.length, "group")} of identical files · ${formatBytes(wasted)} could be freed · scanned ${plural(s.files || 0, "file")} (${formatBytes(s.bytes || 0)}) in ${formatDuration(s.duration_s)}, finished ${formatDate(body.finished_at)}`
        : `No duplicates: scanned ${plural(s.files || 0, "file")} (${formatBytes(s.bytes || 0)}), finished ${formatDate(body.finished_at)}.`;
    }
    function draw() {
      clear(list, groups.slice(0, shown).map((group) => groupView(group, () => {
        groups.splice(groups.indexOf(group), 1);
        updateSummary();
        draw();
      })));
      moreButton.hidden = shown >= groups.length;
    }
    moreButton.addEventListener("click", () => { shown += GROUPS_SHOWN; draw(); });
    updateSummary();
    draw();
    clear(results, h("h2", { id: "results-title" }, "Results"), summary, groups.length ? bulkPanel() : null, list, moreButton);
  }

  // Clean-up at scale: a rule keeps one copy per group; "Preview" asks the server what would
  // move (nothing moves), then "Move N files to the trash" moves exactly the previewed groups.
  function bulkPanel() {
    const rule = h("select", { id: "bulk-rule" }, RULES.map(([value, label]) => h("option", { value }, label)));
    const site = h("input", { id: "bulk-site", type: "text", autocomplete: "off", spellcheck: "false" });
    const model = h("input", { id: "bulk-model", type: "text", autocomplete: "off", spellcheck: "false" });
    const siteField = h("div", { class: "field", hidden: true }, h("label", { for: "bulk-site" }, "Site"), site);
    const modelField = h("div", { class: "field", hidden: true }, h("label", { for: "bulk-model" }, "Model"), model);
    const previewButton = h("button", { type: "submit", class: "secondary" }, "Preview");
    const apply = h("button", { type: "button", class: "danger", id: "bulk-apply", hidden: true });
    const outcome = h("p", { class: "meta", id: "bulk-preview", role: "status" });
    let plan = [];

    function request() {
      const body = { rule: rule.value };
      if (rule.value === "in_site" || rule.value === "in_model") body.site = site.value.trim();
      if (rule.value === "in_model") body.model = model.value.trim().replace(/^\/+|\/+$/g, "");
      return body;
    }
    function stale() {
      siteField.hidden = !["in_site", "in_model"].includes(rule.value);
      modelField.hidden = rule.value !== "in_model";
      apply.hidden = true;
      outcome.textContent = "";
      plan = [];
    }
    for (const input of [rule, site, model]) input.addEventListener("input", stale);

    async function preview(event) {
      event.preventDefault();
      try {
        const body = await api("/api/duplicates/resolve", { method: "POST", json: { ...request(), groups: "all", dry_run: true } });
        plan = body.plan.map((entry) => entry.id);
        const skipped = body.skipped.length ? ` · ${plural(body.skipped.length, "group")} left alone (no copy there)` : "";
        outcome.textContent = `${plural(body.groups, "group")} · ${plural(body.files, "file")} · ${formatBytes(body.bytes)} to the trash${skipped}`;
        apply.textContent = `Move ${plural(body.files, "file")} to the trash`;
        apply.hidden = body.files === 0;
      } catch (error) {
        ctx.error(error, "Could not preview the clean-up");
      }
    }

    async function resolve() {
      apply.disabled = true;
      const moved = { deleted: [], bytes: 0, items: [], changed: [] };
      try {
        for (let i = 0; i < plan.length; i += MAX_RESOLVE_GROUPS) {
          const groups = plan.slice(i, i + MAX_RESOLVE_GROUPS);
          const body = await api("/api/duplicates/resolve", { method: "POST", json: { ...request(), groups } });
          moved.deleted.push(...body.deleted);
          moved.bytes += body.bytes;
          moved.items.push(...body.items);
          moved.changed.push(...body.changed);
        }
      } catch (error) {
        ctx.error(error, "Could not move the copies");
      } finally {
        apply.disabled = false;
      }
      if (moved.items.length) {
        const changed = moved.changed.length ? ` ${plural(moved.changed.length, "group")} changed since the scan and ${moved.changed.length === 1 ? "was" : "were"} left alone.` : "";
        notify(`Moved ${plural(moved.deleted.length, "file")} to the trash (${formatBytes(moved.bytes)}).${changed}`, undo(moved.items));
      }
      await loadResults();
    }
    apply.addEventListener("click", () => resolve().catch(ctx.error));

    return h("section", { class: "bulk", "aria-labelledby": "bulk-title" },
      h("h3", { id: "bulk-title" }, "Clean up every group"),
      h("form", { class: "bulk-form", onsubmit: (event) => preview(event) },
        h("div", { class: "field" }, h("label", { for: "bulk-rule" }, "Keep in each group"), rule),
        siteField, modelField, previewButton),
      outcome, apply);
  }

  // the notice's Undo: every item a clean-up moved comes back from the trash
  function undo(items) {
    return {
      label: "Undo",
      trashIds: items.map((item) => item.id),
      run: async () => {
        const { restored, failure } = await restoreItems(items);
        if (failure) ctx.error(failure, "Could not restore every copy");
        if (restored) notify(`Restored ${plural(restored, "file")} from the trash. Scan again to see them among the duplicates.`);
      },
    };
  }

  function groupView(group, removed) {
    const copies = group.files.length;
    const files = h("ul", { class: "dupe-files" });
    group.files.forEach((path, index) => {
      const { site, model, name } = modelOf(path);
      const folder = model
        ? h("a", { href: ctx.href({ site, model }), "data-nav": "", title: `Open the model ${model} of ${site}` }, breakable(`${site}/${model}/`))
        : breakable(`${site}/`);
      files.append(h("li", { class: "dupe" },
        h("a", { href: mediaUrl(path), class: "dupe-thumb", target: "_blank", rel: "noopener" },
          h("img", { src: thumbUrl(path, 320), alt: path, loading: "lazy", decoding: "async", width: 320, height: 240 })),
        h("p", { class: "path" }, folder, name),
        h("p", { class: "meta" }, formatBytes(group.size), " · ", h("span", { class: "date" }, formatDate(group.mtimes?.[index]))),
        h("button", { type: "button", class: "primary", "aria-label": `Keep this one: ${path}`, onclick: () => keep(group, path, removed) }, "Keep this one")));
    });
    return h("li", { class: "group" },
      h("h3", {}, `${copies} copies of ${formatBytes(group.size)} · ${formatBytes(group.wasted)} wasted`),
      files);
  }

  async function keep(group, path, removed) {
    const others = group.files.filter((p) => p !== path);
    const ok = await confirmAction({
      title: "Keep this copy?",
      text: `Keep ${path} and move ${plural(others.length, "other copy", "other copies")} to the trash. Emptying the trash then frees ${formatBytes(group.size * others.length)}.`,
      confirm: "Move the others to trash",
    });
    if (!ok) return;
    try {
      const result = await api("/api/duplicates/delete", { method: "POST", json: { keep: path, delete: others } });
      notify(`Moved ${plural(result.deleted.length, "file")} to the trash (${formatBytes(result.freed)}).`, undo(result.items));
      removed();
    } catch (error) {
      ctx.error(error, "Could not remove the copies");
    }
  }

  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      const started = await api("/api/scan", { method: "POST" });
      // a small scan may be over before this answer arrives: never paint over newer events
      if (live.scan?.scan_id !== started.scan_id) {
        rate = null;
        lastSample = null;
        showProgress({ running: true, scan_id: started.scan_id, phase: "walking", percent: 0 });
      }
    } catch (error) {
      start.disabled = false;
      ctx.error(error, "Could not start the scan");
    }
  });
  cancel.addEventListener("click", async () => {
    try {
      await api("/api/scan/cancel", { method: "POST" });
      phase.textContent = "Cancelling…";
    } catch (error) {
      ctx.error(error, "Could not cancel the scan");
    }
  });

  const handlers = {
    hello: (e) => {
      showProgress(e.detail.scan);
      // a reconnect may have missed the end of a scan: reload results if they are newer
      if (e.detail.scan && !e.detail.scan.running && e.detail.scan.scan_id && e.detail.scan.scan_id !== resultsId) loadResults().catch(ctx.error);
    },
    "scan.started": (e) => {
      rate = null;
      lastSample = null;
      showProgress({ running: true, scan_id: e.detail.scan_id, phase: "walking", percent: 0, total: e.detail.total || 0 });
    },
    "scan.progress": (e) => showProgress(e.detail),
    "scan.finished": () => {
      showProgress({ ...(live.scan || {}), running: false, percent: 100, phase: "done" });
      loadResults().catch(ctx.error);
    },
    "scan.failed": (e) => {
      showProgress({ ...(live.scan || {}), running: false, phase: "failed" });
      ctx.error(new Error(e.detail.message || "The scan failed."), "Scan failed");
    },
    "scan.cancelled": () => showProgress({ ...(live.scan || {}), running: false, phase: "cancelled" }),
  };
  for (const [type, handler] of Object.entries(handlers)) live.addEventListener(type, handler);

  // one fetch of the current state at entry (the socket may not be open yet); after that
  // everything arrives over /ws
  try {
    showProgress(live.scan || (await api("/api/scan_progress")));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) phase.textContent = "The duplicate scan is not available on this server.";
    else ctx.error(error, "Scan progress");
  }
  await loadResults();
  return {
    destroy() {
      for (const [type, handler] of Object.entries(handlers)) live.removeEventListener(type, handler);
    },
  };
}

// Duplicates: start or cancel a scan, follow it live (a real <progress> driven by /ws
// events, resynced from the "hello" after a reconnect), then review the groups, largest
// waste first, side by side, and keep one copy of each (the others go to the trash).
import { ApiError, api, formatBytes, formatDate, formatDuration, formatNumber, mediaUrl, plural, thumbUrl } from "../api.js";
import { h, clear, confirmAction, notify } from "../dom.js";
import { live } from "../live.js";

const GROUPS_SHOWN = 30;

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
      ? `Scanning: ${p.phase || "starting"} · ${Math.round(percent)}%`
      : p.scan_id ? `Last scan ${p.phase || "finished"} · ${Math.round(percent)}%` : "No scan running";
    clear(details,
      detail("Files", `${formatNumber(p.checked || 0)} / ${formatNumber(p.total || 0)}`),
      detail("Bytes", `${formatBytes(p.bytes_done || 0)} / ${formatBytes(p.bytes_total || 0)}`),
      detail("Rate", running && rate !== null ? `${formatBytes(rate)}/s` : "–"),
      detail("ETA", running ? formatDuration(p.eta_s) : "–"),
      detail("Cache hits", formatNumber(p.cache_hits || 0)));
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
    clear(results, h("h2", { id: "results-title" }, "Results"), summary, list, moreButton);
  }

  function groupView(group, removed) {
    const copies = group.files.length;
    const files = h("ul", { class: "dupe-files" });
    for (const path of group.files) {
      const date = h("span", { class: "date" });
      files.append(h("li", { class: "dupe" },
        h("a", { href: mediaUrl(path), class: "dupe-thumb", target: "_blank", rel: "noopener" },
          h("img", { src: thumbUrl(path, 320), alt: path, loading: "lazy", decoding: "async", width: 320, height: 240 })),
        h("p", { class: "path" }, path),
        h("p", { class: "meta" }, formatBytes(group.size), " · ", date),
        h("button", { type: "button", class: "primary", "aria-label": `Keep this one: ${path}`, onclick: () => keep(group, path, removed) }, "Keep this one")));
      lastModified(path).then((text) => { date.textContent = text; });
    }
    return h("li", { class: "group" },
      h("h3", {}, `${copies} copies of ${formatBytes(group.size)} · ${formatBytes(group.wasted)} wasted`),
      files);
  }

  async function keep(group, path, removed) {
    const others = group.files.filter((p) => p !== path);
    const ok = await confirmAction({
      title: "Keep this copy?",
      text: `Keep ${path} and move ${plural(others.length, "other copy", "other copies")} to the trash. This frees ${formatBytes(group.size * others.length)}.`,
      confirm: "Move the others to trash",
    });
    if (!ok) return;
    try {
      const result = await api("/api/duplicates/delete", { method: "POST", json: { keep: path, delete: others } });
      notify(`Moved ${plural(result.deleted.length, "file")} to the trash, freed ${formatBytes(result.freed)}.`);
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
        showProgress({ running: true, scan_id: started.scan_id, phase: "starting", percent: 0 });
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
      showProgress({ running: true, scan_id: e.detail.scan_id, phase: "starting", percent: 0, total: e.detail.total || 0 });
    },
    "scan.progress": (e) => showProgress(e.detail),
    "scan.finished": () => {
      showProgress({ ...(live.scan || {}), running: false, percent: 100, phase: "finished" });
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

const modifiedCache = new Map();
function lastModified(path) {
  if (!modifiedCache.has(path)) {
    modifiedCache.set(path, fetch(mediaUrl(path), { method: "HEAD" })
      .then((r) => (r.ok ? formatDate(Date.parse(r.headers.get("Last-Modified")) / 1000) : "gone"))
      .catch(() => "–"));
  }
  return modifiedCache.get(path);
}

// The scan panel of the two scan views (Duplicates, Similar images): start or cancel a scan and
// follow it live (a real <progress> driven by /ws events, resynced from the "hello" after a
// reconnect). One scan runs at a time whatever its kind, so a view shows a running scan of the
// other kind too (named, so the disabled "Start scan" makes sense), and hears only of its own
// kind's scans ending: `onFinished(scanId)` is the view's cue to load its results.
import { ApiError, api, formatBytes, formatDuration, formatNumber } from "./api.js";
import { h, clear } from "./dom.js";
import { live } from "./live.js";

// one wording per kind and server phase, the same live (/ws), polled (/api/scan_progress) and after a reload
const ENDED = { idle: "idle", done: "finished", cancelled: "cancelled", failed: "failed" };
const KINDS = {
  exact: {
    name: "duplicate scan",
    phases: { ...ENDED, walking: "listing files", hashing: "comparing same-size files" },
    checked: "Files compared",
    cached: "Files from the hash cache",
  },
  similar: {
    name: "similar-image scan",
    phases: { ...ENDED, walking: "listing files", similar: "hashing images" },
    checked: "Images hashed",
    cached: "Images from the cache",
  },
};
// a server without kinds (or an event before it says) runs exact scans
const kindOf = (body) => (KINDS[body?.kind] ? body.kind : "exact");
const phaseLabel = (kind, phase) => KINDS[kind].phases[phase] || phase || KINDS[kind].phases.walking;

export function scanPanel({ kind, label, ctx, onFinished }) {
  const start = h("button", { type: "button", class: "primary", id: "scan-start" }, "Start scan");
  const cancel = h("button", { type: "button", class: "secondary", id: "scan-cancel", disabled: true }, "Cancel");
  const bar = h("progress", { id: "scan-progress", max: 100, value: 0, "aria-labelledby": "scan-progress-label" });
  const phase = h("span", { id: "scan-progress-label" }, "No scan running");
  const details = h("dl", { class: "scan-details" });
  let lastSample = null; // for the rate: {t, bytes}
  let rate = null;

  const detail = (term, value) => [h("dt", {}, term), h("dd", {}, value)];

  function showProgress(p) {
    if (!p) return;
    const running = Boolean(p.running);
    const scanKind = kindOf(p);
    const mine = scanKind === kind;
    start.disabled = running;
    cancel.disabled = !running;
    const percent = Math.max(0, Math.min(100, Number(p.percent) || 0));
    bar.value = running || (mine && percent) ? percent : 0;
    bar.setAttribute("aria-valuetext", `${Math.round(bar.value)}%`);
    const now = performance.now();
    if (running && typeof p.bytes_done === "number") {
      if (lastSample && now > lastSample.t && p.bytes_done >= lastSample.bytes) {
        const sample = ((p.bytes_done - lastSample.bytes) * 1000) / (now - lastSample.t);
        rate = rate === null ? sample : 0.7 * rate + 0.3 * sample;
      }
      lastSample = { t: now, bytes: p.bytes_done };
    }
    if (!running) lastSample = null;
    const where = `${phaseLabel(scanKind, p.phase)} · ${Math.round(percent)}%`;
    if (running) phase.textContent = mine ? `Scanning: ${where}` : `A ${KINDS[scanKind].name} is running: ${where}`;
    else phase.textContent = mine && p.scan_id ? `Last scan ${where}` : "No scan running";
    if (!running && !mine) {
      clear(details);
      return;
    }
    // while listing: the files found so far (no total yet); then the files compared or images hashed
    const walking = running && p.phase === "walking";
    clear(details,
      walking
        ? detail("Files found", formatNumber(p.files_found || 0))
        : detail(KINDS[scanKind].checked, `${formatNumber(p.checked || 0)} / ${formatNumber(p.total || 0)}`),
      detail("Bytes", `${formatBytes(p.bytes_done || 0)} / ${formatBytes(p.bytes_total || 0)}`),
      detail("Rate", running && rate !== null ? `${formatBytes(rate)}/s` : "–"),
      detail("ETA", running ? formatDuration(p.eta_s) : "–"),
      detail(KINDS[scanKind].cached, formatNumber(p.cache_hits || 0)));
  }

  function restart(scanId, scanKind) {
    rate = null;
    lastSample = null;
    showProgress({ running: true, scan_id: scanId, kind: scanKind, phase: "walking", percent: 0 });
  }

  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      // the exact scan is the server's default: asked for without a kind, as before kinds existed
      const started = await api("/api/scan", { method: "POST", params: kind === "exact" ? {} : { kind } });
      // a small scan may be over before this answer arrives: never paint over newer events
      if (live.scan?.scan_id !== started.scan_id) restart(started.scan_id, kind);
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

  // the end of a scan: its event may name the kind, else the last progress seen does
  const ended = (event) => ({ ...(live.scan || {}), kind: event.detail.kind ?? live.scan?.kind, running: false });
  const handlers = {
    hello: (e) => {
      const scan = e.detail.scan;
      showProgress(scan);
      // a reconnect may have missed the end of a scan: the view reloads results if they are newer
      if (scan && !scan.running && scan.scan_id && kindOf(scan) === kind) onFinished(scan.scan_id);
    },
    "scan.started": (e) => restart(e.detail.scan_id, kindOf(e.detail)),
    "scan.progress": (e) => showProgress(e.detail),
    "scan.finished": (e) => {
      const scan = { ...ended(e), percent: 100, phase: "done" };
      showProgress(scan);
      if (kindOf(scan) === kind) onFinished(e.detail.scan_id);
    },
    "scan.failed": (e) => {
      const scan = { ...ended(e), phase: "failed" };
      showProgress(scan);
      if (kindOf(scan) === kind) ctx.error(new Error(e.detail.message || "The scan failed."), "Scan failed");
    },
    "scan.cancelled": (e) => showProgress({ ...ended(e), phase: "cancelled" }),
  };
  for (const [type, handler] of Object.entries(handlers)) live.addEventListener(type, handler);

  return {
    element: h("section", { class: "scan-panel", "aria-label": label },
      h("div", { class: "actions" }, start, cancel),
      h("div", { class: "progress-row" }, phase, bar),
      details),
    // one fetch of the current state at entry (the socket may not be open yet); after that
    // everything arrives over /ws
    async sync() {
      try {
        showProgress(live.scan || (await api("/api/scan_progress")));
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) phase.textContent = "Scans are not available on this server.";
        else ctx.error(error, "Scan progress");
      }
    },
    destroy() {
      for (const [type, handler] of Object.entries(handlers)) live.removeEventListener(type, handler);
    },
  };
}

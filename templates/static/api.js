// The JSON API: one fetch wrapper that turns every failure into an ApiError with the
// server's own sentence, plus the formatting helpers the views share.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export function apiUrl(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(key, v));
    else url.searchParams.set(key, value);
  }
  return url.pathname + url.search;
}

export async function api(path, { method = "GET", params, json, signal } = {}) {
  const init = { method, signal, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(apiUrl(path, params), init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network", "The server cannot be reached. Check that it is running, then try again.");
  }
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const message = body?.message || `The server answered ${response.status} ${response.statusText}.`;
    throw new ApiError(response.status, body?.error || `http_${response.status}`, message);
  }
  return body;
}

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

export function formatBytes(count) {
  let value = Number(count) || 0;
  for (const unit of UNITS) {
    if (Math.abs(value) < 1000 || unit === "PB") {
      return unit === "B" ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${unit}`;
    }
    value /= 1000;
  }
  return `${value} B`;
}

const numberFormat = new Intl.NumberFormat("en");
export const formatNumber = (n) => numberFormat.format(n);

const dateFormat = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "short" });
export function formatDate(seconds) {
  if (!seconds) return "–";
  return dateFormat.format(new Date(seconds * 1000));
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function plural(n, word, many = `${word}s`) {
  return `${formatNumber(n)} ${n === 1 ? word : many}`;
}

// URLs of the catalog's own resources (site and model paths are encoded segment by segment).
const segments = (path) => path.split("/").map(encodeURIComponent).join("/");
export const mediaUrl = (relative) => `/media/${segments(relative)}`;
export const thumbUrl = (relative, width = 320) => `/thumb/${segments(relative)}?w=${width}`;
// `v` (the source's mtime) gives a changed file a new URL, so a day of browser caching never shows a stale picture
export const withWidth = (thumbnail, width, mtime) =>
  thumbnail ? `${thumbnail.split("?")[0]}?w=${width}${mtime ? `&v=${Math.round(mtime)}` : ""}` : null;

export function downloadUrl(site, models, format) {
  return apiUrl("/api/download", { site, model: models, format });
}

// The site and model a library path (site/model…/file) belongs to, as the trash names them.
export function modelOf(relative) {
  const [site, ...rest] = relative.split("/");
  const name = rest.pop();
  return { site, model: rest.join("/"), name };
}

// Restore trash items (an Undo); answers how many came back and the first error, if any.
export async function restoreItems(items) {
  let restored = 0;
  let failure = null;
  for (const item of items) {
    try {
      await api("/api/trash/restore", { method: "POST", params: { id: item.id } });
      restored += 1;
    } catch (error) {
      failure ??= error;
    }
  }
  return { restored, failure };
}

// A trashed item's picture: the file itself, or a model's first image (404 when it has none).
export const trashThumbUrl = (id, width = 128) => apiUrl("/api/trash/thumb", { id, w: width });

// Trash ids go in batches, as a query holds at most 64 parameters.
const TRASH_BATCH = 50;
const batches = (ids) => Array.from({ length: Math.ceil(ids.length / TRASH_BATCH) }, (_, i) => ids.slice(i * TRASH_BATCH, (i + 1) * TRASH_BATCH));

// Restore trash items by id: `{restored: [item…], conflicts: [{id, message}]}` however many there are.
export async function restoreTrashItems(ids) {
  const restored = [];
  const conflicts = [];
  for (const batch of batches(ids)) {
    try {
      const body = await api("/api/trash/restore", { method: "POST", params: { id: batch } });
      if (body.status === "restored") restored.push(body.item);
      else {
        restored.push(...body.restored);
        conflicts.push(...body.conflicts);
      }
    } catch (error) {
      // one id answers 404 or 409 itself; several are always answered per item
      if (batch.length !== 1 || ![404, 409].includes(error.status)) throw error;
      conflicts.push({ id: batch[0], message: error.message });
    }
  }
  return { restored, conflicts };
}

// Delete trash items for good by id: `{deleted: [item…], freed, failed: [{id, message}]}`.
export async function deleteTrashItems(ids) {
  const result = { deleted: [], freed: 0, failed: [] };
  for (const batch of batches(ids)) {
    const body = await api("/api/trash/delete", { method: "POST", params: { id: batch } });
    result.deleted.push(...body.deleted);
    result.freed += body.freed;
    result.failed.push(...body.failed);
  }
  return result;
}

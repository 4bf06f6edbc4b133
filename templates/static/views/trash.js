// Trash: what was deleted (newest first), each with its picture, a checkbox and "Restore".
// Many at once: select all, "Restore selected", "Delete selected for good" (behind a
// confirmation naming count and size), and "Empty trash". Thousands of items render in
// pages as the list scrolls; the selection covers every item, shown or not.
import {
  api, deleteTrashItems, formatBytes, formatDate, plural, restoreTrashItems, trashThumbUrl,
} from "../api.js";
import { h, clear, confirmAction, notify, whenNear } from "../dom.js";

const PAGE = 200;

export async function trashView(main, route, ctx) {
  document.title = "Trash · archive-catalog";
  const summary = h("p", { class: "meta", role: "status" });
  const empty = h("button", { type: "button", class: "danger", id: "empty-trash" }, "Empty trash");
  const selectAll = h("input", { type: "checkbox", id: "trash-select-all" });
  const selectionCount = h("span", { class: "selection-count", "aria-live": "polite" });
  const restoreSelected = h("button", { type: "button", class: "secondary", id: "restore-selected" }, "Restore selected");
  const deleteSelected = h("button", { type: "button", class: "danger", id: "delete-selected" }, "Delete selected for good");
  const tools = h("div", { class: "trash-tools", role: "group", "aria-label": "Selected items" },
    h("label", { for: "trash-select-all" }, selectAll, "Select all"), selectionCount, restoreSelected, deleteSelected);
  const list = h("ul", { class: "trash-list" });
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  clear(main, h("div", { class: "heading" }, h("h1", { tabindex: "-1" }, "Trash"), empty), summary, tools, list, sentinel);
  let items = [];
  let shown = 0;
  const selected = new Set();
  const checkboxes = new Map();

  const where = (item) => [item.site, item.model, item.kind === "file" ? item.path : null].filter(Boolean).join("/");
  const sizeOf = (chosen) => chosen.reduce((sum, item) => sum + (item.size || 0), 0);
  const chosenItems = () => items.filter((item) => selected.has(item.id));

  function showSelection() {
    const chosen = chosenItems();
    selectionCount.textContent = chosen.length ? `${plural(chosen.length, "item")} selected · ${formatBytes(sizeOf(chosen))}` : "None selected";
    selectAll.checked = items.length > 0 && chosen.length === items.length;
    selectAll.indeterminate = chosen.length > 0 && chosen.length < items.length;
    restoreSelected.disabled = deleteSelected.disabled = chosen.length === 0;
    for (const [id, box] of checkboxes) box.checked = selected.has(id);
  }

  function row(item) {
    const box = h("input", { type: "checkbox", class: "pick", "aria-label": `Select ${where(item)}` });
    box.checked = selected.has(item.id);
    box.addEventListener("change", () => {
      if (box.checked) selected.add(item.id);
      else selected.delete(item.id);
      showSelection();
    });
    checkboxes.set(item.id, box);
    const label = item.kind === "model" ? `First image of ${where(item)}` : `Preview of ${where(item)}`;
    const picture = h("img", { class: "trash-thumb", src: trashThumbUrl(item.id), alt: label, loading: "lazy", width: 64, height: 64 });
    // a model without images has no picture: a plain tile instead of a broken image
    picture.addEventListener("error", () => picture.replaceWith(h("span", { class: "trash-thumb", "aria-hidden": "true" })), { once: true });
    return h("li", { class: "trash-item" },
      box,
      picture,
      h("div", { class: "info" },
        h("span", { class: "kind" }, item.kind === "model" ? "Model" : "File"),
        h("span", { class: "path" }, where(item)),
        h("span", { class: "meta" }, `${formatBytes(item.size)} · deleted ${formatDate(item.deleted_at)}`)),
      h("button", { type: "button", class: "secondary", "aria-label": `Restore ${where(item)}`, onclick: () => restore([item]) }, "Restore"));
  }

  function showMore() {
    if (shown >= items.length) return;
    list.append(...items.slice(shown, shown + PAGE).map(row));
    shown = Math.min(items.length, shown + PAGE);
  }

  async function load() {
    const body = await api("/api/trash");
    items = [...body.items].sort((a, b) => (b.deleted_at || 0) - (a.deleted_at || 0));
    const present = new Set(items.map((item) => item.id));
    for (const id of [...selected]) if (!present.has(id)) selected.delete(id);
    summary.textContent = items.length ? `${plural(items.length, "item")} · ${formatBytes(sizeOf(items))}` : "The trash is empty.";
    empty.disabled = items.length === 0;
    tools.hidden = items.length === 0;
    checkboxes.clear();
    clear(list);
    shown = 0;
    showMore();
    showSelection();
  }

  async function restore(chosen) {
    try {
      const { restored, conflicts } = await restoreTrashItems(chosen.map((item) => item.id));
      if (restored.length) notify(restored.length === 1 ? `Restored ${where(restored[0])}.` : `Restored ${plural(restored.length, "item")}.`);
      if (conflicts.length) {
        const more = conflicts.length > 1 ? ` (and ${plural(conflicts.length - 1, "other")})` : "";
        ctx.error(new Error(`${conflicts[0].message}${more}`), `Could not restore ${plural(conflicts.length, "item")}`);
      }
    } catch (error) {
      ctx.error(error, "Could not restore");
    }
    await load().catch(ctx.error);
  }

  async function deleteForGood(chosen) {
    const ok = await confirmAction({
      title: "Delete for good?",
      text: `Permanently delete ${plural(chosen.length, "selected item")} (${formatBytes(sizeOf(chosen))})? This cannot be undone.`,
      confirm: "Delete for good",
    });
    if (!ok) return;
    try {
      const result = await deleteTrashItems(chosen.map((item) => item.id));
      notify(`Deleted ${plural(result.deleted.length, "item")} for good, freed ${formatBytes(result.freed)}.`);
      if (result.failed.length) ctx.error(new Error(result.failed[0].message), `Could not delete ${plural(result.failed.length, "item")}`);
    } catch (error) {
      ctx.error(error, "Could not delete");
    }
    await load().catch(ctx.error);
  }

  selectAll.addEventListener("change", () => {
    if (selectAll.checked) items.forEach((item) => selected.add(item.id));
    else selected.clear();
    showSelection();
  });
  restoreSelected.addEventListener("click", () => restore(chosenItems()));
  deleteSelected.addEventListener("click", () => deleteForGood(chosenItems()));

  empty.addEventListener("click", async () => {
    const ok = await confirmAction({
      title: "Empty the trash?",
      text: `Permanently delete ${plural(items.length, "item")} (${formatBytes(sizeOf(items))})? This cannot be undone.`,
      confirm: "Delete permanently",
    });
    if (!ok) return;
    try {
      const result = await api("/api/trash", { method: "DELETE" });
      notify(`Emptied the trash, freed ${formatBytes(result.freed)}.`);
      await load();
    } catch (error) {
      ctx.error(error, "Could not empty the trash");
    }
  });

  const stopWatching = whenNear(sentinel, showMore);
  await load();
  return { onLibraryChanged: () => load().catch(ctx.error), destroy: stopWatching };
}

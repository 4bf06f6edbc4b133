// Trash: what was deleted (newest first), each with "Restore", and "Empty trash", the only
// permanent delete, behind a confirmation that says how much it removes.
import { api, formatBytes, formatDate, plural } from "../api.js";
import { h, clear, confirmAction, notify } from "../dom.js";

export async function trashView(main, route, ctx) {
  document.title = "Trash · archive-catalog";
  const summary = h("p", { class: "meta", role: "status" });
  const empty = h("button", { type: "button", class: "danger", id: "empty-trash" }, "Empty trash");
  const list = h("ul", { class: "trash-list" });
  clear(main, h("div", { class: "heading" }, h("h1", { tabindex: "-1" }, "Trash"), empty), summary, list);
  let items = [];

  const where = (item) => [item.site, item.model, item.kind === "file" ? item.path : null].filter(Boolean).join("/");

  async function load() {
    const body = await api("/api/trash");
    items = [...body.items].sort((a, b) => (b.deleted_at || 0) - (a.deleted_at || 0));
    const bytes = items.reduce((sum, item) => sum + (item.size || 0), 0);
    summary.textContent = items.length ? `${plural(items.length, "item")} · ${formatBytes(bytes)}` : "The trash is empty.";
    empty.disabled = items.length === 0;
    clear(list, items.map((item) => h("li", { class: "trash-item" },
      h("span", { class: "kind" }, item.kind === "model" ? "Model" : "File"),
      h("span", { class: "path" }, where(item)),
      h("span", { class: "meta" }, `${formatBytes(item.size)} · deleted ${formatDate(item.deleted_at)}`),
      h("button", { type: "button", class: "secondary", "aria-label": `Restore ${where(item)}`, onclick: () => restore(item) }, "Restore"))));
  }

  async function restore(item) {
    try {
      await api("/api/trash/restore", { method: "POST", params: { id: item.id } });
      notify(`Restored ${where(item)}.`);
      await load();
    } catch (error) {
      ctx.error(error, `Could not restore ${where(item)}`);
    }
  }

  empty.addEventListener("click", async () => {
    const bytes = items.reduce((sum, item) => sum + (item.size || 0), 0);
    const ok = await confirmAction({
      title: "Empty the trash?",
      text: `Permanently delete ${plural(items.length, "item")} (${formatBytes(bytes)})? This cannot be undone.`,
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

  await load();
  return { onLibraryChanged: () => load().catch(ctx.error) };
}

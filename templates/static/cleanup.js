// What the two clean-up views (Duplicates, Similar images) share once a scan has grouped files:
// paths that link to their model, the groups in pages, the notice's Undo, and the bulk panel
// (a rule keeps one file per group; "Preview" asks the server what would move and lists it,
// nothing moves, then one button, or a confirm, moves exactly the previewed groups). The
// server keeps one file in every group whatever is asked: the last copy is never removed.
import { api, formatBytes, modelOf, plural, restoreItems } from "./api.js";
import { h, clear, confirmAction, notify } from "./dom.js";

const GROUPS_SHOWN = 30;
const MAX_RESOLVE_GROUPS = 5000; // per request (the server's bound)
const PREVIEW_LISTED = 200; // files named in a preview; the rest are counted

// a path that may wrap after each "/", never inside a name
export const breakable = (text) => text.split("/").flatMap((part, i, all) => (i < all.length - 1 ? [`${part}/`, h("wbr")] : [part]));

// a library path as "site/model/" (a link to the model) and the file's name
export function pathWithModelLink(ctx, path) {
  const { site, model, name } = modelOf(path);
  const folder = model
    ? h("a", { href: ctx.href({ site, model }), "data-nav": "", title: `Open the model ${model} of ${site}` }, breakable(`${site}/${model}/`))
    : breakable(`${site}/`);
  return h("p", { class: "path" }, folder, name);
}

// The notice's Undo: every item a clean-up moved comes back from the trash.
export function undoAction(ctx, items, where) {
  return {
    label: "Undo",
    trashIds: items.map((item) => item.id),
    run: async () => {
      const { restored, failure } = await restoreItems(items);
      if (failure) ctx.error(failure, "Could not restore every copy");
      if (restored) notify(`Restored ${plural(restored, "file")} from the trash. Scan again to see them among the ${where}.`);
    },
  };
}

// "Keep this one": the POST to `endpoint` moves the group's other files to the trash (the server
// re-checks them and never takes `keep`); a notice says so and offers Undo; `removed()` then
// takes the group off the page.
export async function keepOne(ctx, { endpoint, body, where, removed }) {
  try {
    const result = await api(endpoint, { method: "POST", json: body });
    notify(`Moved ${plural(result.deleted.length, "file")} to the trash (${formatBytes(result.freed)}).`, undoAction(ctx, result.items, where));
    removed();
  } catch (error) {
    ctx.error(error, "Could not move the copies to the trash");
  }
}

// The groups as a list, GROUPS_SHOWN at a time behind "Show more groups". `renderGroup(group,
// removed)` draws one; its `removed()` takes the group out (its files were moved), calls
// `changed()` and puts focus on the next group's heading, so the keyboard never falls to <body>.
export function groupList(groups, renderGroup, changed) {
  let shown = GROUPS_SHOWN;
  const list = h("ol", { class: "groups" });
  const more = h("button", { type: "button", class: "secondary" }, "Show more groups");
  function draw() {
    clear(list, groups.slice(0, shown).map((group) => renderGroup(group, () => {
      const index = groups.indexOf(group);
      groups.splice(index, 1);
      changed();
      draw();
      (list.children[index] || list.lastElementChild)?.querySelector("h3")?.focus();
    })));
    more.hidden = shown >= groups.length;
  }
  more.addEventListener("click", () => { shown += GROUPS_SHOWN; draw(); });
  draw();
  return [list, more];
}

// The bulk clean-up panel. `rules`: [value, label] pairs ("in_site" and "in_model" ask for a
// site, and a model); `request()` adds the view's own fields (a threshold); `confirmFirst`
// puts a confirm dialog between the preview and the move; `done()` reloads the results.
export function bulkPanel({ ctx, endpoint, rules, request = () => ({}), confirmFirst = false, where, done }) {
  const rule = h("select", { id: "bulk-rule" }, rules.map(([value, label]) => h("option", { value }, label)));
  const site = h("input", { id: "bulk-site", type: "text", autocomplete: "off", spellcheck: "false" });
  const model = h("input", { id: "bulk-model", type: "text", autocomplete: "off", spellcheck: "false" });
  const siteField = h("div", { class: "field", hidden: true }, h("label", { for: "bulk-site" }, "Site"), site);
  const modelField = h("div", { class: "field", hidden: true }, h("label", { for: "bulk-model" }, "Model"), model);
  const hasModel = rules.some(([value]) => value === "in_model");
  const previewButton = h("button", { type: "submit", class: "secondary" }, "Preview");
  const apply = h("button", { type: "button", class: "danger", id: "bulk-apply", hidden: true });
  const outcome = h("p", { class: "meta", id: "bulk-preview", role: "status" });
  const listing = h("details", { class: "bulk-list", hidden: true });
  let preview = null; // the dry run's answer

  function body() {
    const chosen = { rule: rule.value, ...request() };
    if (rule.value === "in_site" || rule.value === "in_model") chosen.site = site.value.trim();
    if (rule.value === "in_model") chosen.model = model.value.trim().replace(/^\/+|\/+$/g, "");
    return chosen;
  }
  function reset() {
    siteField.hidden = !["in_site", "in_model"].includes(rule.value);
    modelField.hidden = rule.value !== "in_model";
    apply.hidden = true;
    listing.hidden = true;
    outcome.textContent = "";
    preview = null;
  }
  for (const input of [rule, site, model]) input.addEventListener("input", reset);

  // what the preview would move, group by group (the first PREVIEW_LISTED files)
  function showListing(plan) {
    const paths = plan.flatMap((entry) => entry.delete.map((path) => [path, entry.keep]));
    clear(listing,
      h("summary", {}, `The ${plural(paths.length, "file")} that would move`),
      h("ul", {}, paths.slice(0, PREVIEW_LISTED).map(([path, keep]) => h("li", {}, breakable(path), h("span", { class: "meta" }, ` (keeps ${keep})`)))),
      paths.length > PREVIEW_LISTED ? h("p", { class: "meta" }, `…and ${plural(paths.length - PREVIEW_LISTED, "more file")}.`) : null);
    listing.hidden = paths.length === 0;
  }

  async function runPreview(event) {
    event.preventDefault();
    try {
      const answer = await api(endpoint, { method: "POST", json: { ...body(), groups: "all", dry_run: true } });
      preview = answer;
      const skipped = answer.skipped.length ? ` · ${plural(answer.skipped.length, "group")} left alone (no copy there)` : "";
      outcome.textContent = `${plural(answer.groups, "group")} · ${plural(answer.files, "file")} · ${formatBytes(answer.bytes)} to the trash${skipped}`;
      apply.textContent = `Move ${plural(answer.files, "file")} to the trash`;
      apply.hidden = answer.files === 0;
      showListing(answer.plan);
    } catch (error) {
      ctx.error(error, "Could not preview the clean-up");
    }
  }

  async function resolve() {
    const plan = preview.plan.map((entry) => entry.id);
    if (confirmFirst) {
      const ok = await confirmAction({
        title: "Move the previewed files?",
        text: `Keep one file in each of ${plural(preview.groups, "group")} and move ${plural(preview.files, "file")} (${formatBytes(preview.bytes)}) to the trash, where they can be restored.`,
        items: preview.plan.flatMap((entry) => entry.delete).slice(0, PREVIEW_LISTED),
        confirm: apply.textContent,
      });
      if (!ok) return;
    }
    apply.disabled = true;
    const moved = { deleted: [], bytes: 0, items: [], changed: [] };
    try {
      for (let i = 0; i < plan.length; i += MAX_RESOLVE_GROUPS) {
        const groups = plan.slice(i, i + MAX_RESOLVE_GROUPS);
        const answer = await api(endpoint, { method: "POST", json: { ...body(), groups } });
        moved.deleted.push(...answer.deleted);
        moved.bytes += answer.bytes;
        moved.items.push(...answer.items);
        moved.changed.push(...answer.changed);
      }
    } catch (error) {
      ctx.error(error, "Could not move the copies");
    } finally {
      apply.disabled = false;
    }
    if (moved.items.length) {
      const changed = moved.changed.length ? ` ${plural(moved.changed.length, "group")} changed since the scan and ${moved.changed.length === 1 ? "was" : "were"} left alone.` : "";
      notify(`Moved ${plural(moved.deleted.length, "file")} to the trash (${formatBytes(moved.bytes)}).${changed}`, undoAction(ctx, moved.items, where));
    }
    reset();
    await done();
  }
  apply.addEventListener("click", () => resolve().catch(ctx.error));

  const element = h("section", { class: "bulk", "aria-labelledby": "bulk-title" },
    h("h3", { id: "bulk-title" }, "Clean up every group"),
    h("form", { class: "bulk-form", onsubmit: (event) => runPreview(event) },
      h("div", { class: "field" }, h("label", { for: "bulk-rule" }, "Keep in each group"), rule),
      siteField, hasModel ? modelField : null, previewButton),
    outcome, listing, apply);
  return { element, reset };
}

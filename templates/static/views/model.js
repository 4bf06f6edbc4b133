// A model's media: a lazily drawn thumbnail grid (tiles added in chunks as the end comes
// near, thumbnails loaded by the browser only when on screen), the lightbox (its file is in
// the URL, so back closes it and links open it), sort and filter (kept in the URL as
// &sort=name|date|size&order=asc|desc&kind=images|videos), downloads and deletes.
import { api, downloadUrl, formatBytes, plural, withWidth } from "../api.js";
import { h, clear, confirmAction, downloadButtons, isNotFound, isUnknownSite, notify, showState, whenNear } from "../dom.js";
import { Lightbox } from "../lightbox.js";

const CHUNK = 200;
const SORTS = [
  ["name:asc", "Name (A–Z)"],
  ["name:desc", "Name (Z–A)"],
  ["date:desc", "Newest"],
  ["date:asc", "Oldest"],
  ["size:desc", "Largest"],
  ["size:asc", "Smallest"],
];
const KINDS = [["", "All"], ["images", "Images"], ["videos", "Videos"]];
const byName = new Intl.Collator("en", { numeric: true, sensitivity: "base" }).compare;
const day = new Intl.DateTimeFormat("en", { dateStyle: "medium" });

function arrangementOf(route) {
  const sort = SORTS.some(([value]) => value.startsWith(`${route.sort}:`)) ? route.sort : "name";
  const order = route.order === "desc" ? "desc" : "asc";
  const kind = KINDS.some(([value]) => value && value === route.kind) ? route.kind : "";
  return { sort, order, kind };
}

// The listing's images then videos (each in name order) stay apart only when sorted by name;
// by date or size they mix, ties in name order.
function arrange(images, videos, { sort, order, kind }) {
  const shown = kind === "images" ? [images] : kind === "videos" ? [videos] : [images, videos];
  const sign = order === "desc" ? -1 : 1;
  if (sort === "name") return shown.flatMap((group) => (sign < 0 ? [...group].reverse() : group));
  const key = sort === "size" ? (item) => item.size : (item) => item.mtime;
  return shown.flat().sort((a, b) => sign * (key(a) - key(b)) || byName(a.path, b.path));
}

export async function modelView(main, route, ctx) {
  const { site, model } = route;
  document.title = `${model} · ${site} · archive-catalog`;
  let arrangement = arrangementOf(route);
  let listing = { images: [], videos: [] };
  let items = [];
  let drawn = 0;
  let pushed = false;
  const grid = h("ul", { class: "media-grid", "aria-label": `Media of ${model}` });
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const summary = h("p", { class: "meta" });
  const actions = h("div", { class: "actions" });
  const sortSelect = h("select", { id: "media-sort", name: "sort" },
    SORTS.map(([value, label]) => h("option", { value, selected: value === `${arrangement.sort}:${arrangement.order}` }, label)));
  const kindSelect = h("select", { id: "media-kind", name: "kind" },
    KINDS.map(([value, label]) => h("option", { value, selected: value === arrangement.kind }, label)));
  // this model's route with the current sort and filter (defaults left out of the URL)
  const here = (extra = {}) => ({
    site, model, ...extra,
    sort: arrangement.sort === "name" ? "" : arrangement.sort,
    order: arrangement.order === "asc" ? "" : arrangement.order,
    kind: arrangement.kind,
  });
  const lightbox = new Lightbox(document.getElementById("lightbox"), {
    onMove: (item) => ctx.replace(here({ file: item.path })),
    onClose: () => {
      if (!ctx.route().file) return;
      if (pushed) ctx.back(); // the entry that opened the viewer: back is where we came from
      else ctx.replace(here()); // opened from a shared link: stay on the model
      pushed = false;
    },
    onDelete: (item) => deleteFile(item),
  });

  function tile(item, index) {
    if (item.size === 0) { // nothing to draw: say so rather than show a broken picture
      return h("li", {},
        h("button", { type: "button", class: "tile empty-file", "aria-label": `${item.path}: empty file`, onclick: () => open(index) },
          h("span", { class: "tile-note", "aria-hidden": "true" }, "empty file")),
        caption(item));
    }
    const label = item.kind === "video" ? `Play video ${item.path}` : `View ${item.path}`;
    return h("li", {},
      h("button", { type: "button", class: `tile ${item.kind}`, "aria-label": label, onclick: () => open(index) },
        h("img", { src: item.thumbnail, alt: item.path, loading: "lazy", decoding: "async", width: 320, height: 240 }),
        item.kind === "video" ? h("span", { class: "badge", "aria-hidden": "true" }, "▶ video") : null),
      caption(item));
  }

  function caption(item) {
    return h("span", { class: "tile-caption" },
      h("span", { class: "tile-name", title: item.path }, item.path),
      h("span", { class: "tile-meta" }, `${formatBytes(item.size)} · ${day.format(new Date(item.mtime * 1000))}`));
  }

  function redraw() {
    items = arrange(listing.images, listing.videos, arrangement);
    grid.replaceChildren();
    drawn = 0;
    drawMore();
    if (!items.length) {
      const none = listing.images.length + listing.videos.length ? `No ${arrangement.kind} in this model.` : "This model has no media left.";
      grid.append(h("li", { class: "empty" }, none));
    }
  }

  function rearrange() {
    const [sort, order] = sortSelect.value.split(":");
    arrangement = { sort, order, kind: kindSelect.value };
    ctx.replace(here({ file: ctx.route().file }));
    redraw();
  }
  sortSelect.addEventListener("change", rearrange);
  kindSelect.addEventListener("change", rearrange);

  function drawMore() {
    const end = Math.min(items.length, drawn + CHUNK);
    const tiles = [];
    for (let i = drawn; i < end; i++) tiles.push(tile(items[i], i));
    grid.append(...tiles);
    drawn = end;
  }

  function open(index) {
    ctx.push(here({ file: items[index].path }));
    pushed = true;
    lightbox.show(items, index);
  }

  async function load() {
    const body = await api("/api/model", { params: { site, model } });
    const toItem = (kind) => (m) => ({ ...m, kind, thumbnail: withWidth(m.thumbnail, 320, m.mtime), thumbnailLarge: withWidth(m.thumbnail, 1024, m.mtime) });
    listing = { images: body.images.map(toItem("image")), videos: body.videos.map(toItem("video")) };
    const parts = [plural(body.total_images, "image")];
    if (body.total_videos) parts.push(plural(body.total_videos, "video"));
    summary.textContent = `${parts.join(" · ")} · ${formatBytes(body.bytes)}`;
    clear(actions,
      downloadButtons("Download model", (format) => downloadUrl(site, [model], format), { pdf: body.total_images > 0 }),
      h("button", { type: "button", class: "danger", onclick: deleteModel }, "Delete model"));
    redraw();
  }

  async function deleteFile(item) {
    const ok = await confirmAction({
      title: "Delete this file?",
      text: `Move ${item.path} (${formatBytes(item.size)}) to the trash? You can restore it from the Trash.`,
      confirm: "Move to trash",
    });
    if (!ok) return;
    try {
      const result = await api("/api/file", { method: "DELETE", params: { site, model, path: item.path } });
      notify(`Moved ${item.path} to the trash.`,
        { label: "Restore", run: () => ctx.restore(result.trash_id), trashIds: [result.trash_id] });
      const index = items.indexOf(item);
      await load();
      if (items.length && lightbox.isOpen) {
        const nextIndex = Math.min(index, items.length - 1);
        lightbox.show(items, nextIndex);
        ctx.replace(here({ file: items[nextIndex].path }));
      } else lightbox.close();
    } catch (error) {
      ctx.error(error, `Could not delete ${item.path}`);
    }
  }

  async function deleteModel() {
    const ok = await confirmAction({
      title: "Delete this model?",
      text: `Move the whole model “${model}” (${summary.textContent}) to the trash? You can restore it from the Trash.`,
      confirm: "Move to trash",
    });
    if (!ok) return;
    try {
      const result = await api("/api/model", { method: "DELETE", params: { site, model } });
      notify(`Moved ${model} to the trash.`,
        { label: "Restore", run: () => ctx.restore(result.trash_id), trashIds: [result.trash_id] });
      ctx.navigate({ site });
    } catch (error) {
      ctx.error(error, `Could not delete ${model}`);
    }
  }

  function syncLightbox(file) {
    if (!file) {
      pushed = false;
      return lightbox.close();
    }
    const index = items.findIndex((item) => item.path === file);
    if (index >= 0) lightbox.show(items, index);
    else ctx.error(new Error(`${file} is not in this model (any more).`));
  }

  try {
    await load(); // before the page is drawn: an unknown model never shows its downloads
  } catch (error) {
    if (!isNotFound(error)) throw error;
    lightbox.destroy();
    showState(main, isUnknownSite(error)
      ? { title: `No site named “${site}”`, text: "The library has no site folder by that name.", back: { href: ctx.href({}), label: "Back to the sites" } }
      : { title: `No model named “${model}” in ${site}`, text: "It may have been renamed, moved to the trash, or mistyped.",
        back: { href: ctx.href({ site }), label: `Back to ${site}` } });
    ctx.error(error);
    return {};
  }
  clear(
    main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: ctx.href({}), "data-nav": "" }, "Sites"), " › ",
      h("a", { href: ctx.href({ site }), "data-nav": "" }, site), " › ",
      h("span", { "aria-current": "page" }, model)),
    h("div", { class: "heading" }, h("h1", { tabindex: "-1" }, model), actions),
    summary,
    h("div", { class: "toolbar" },
      h("span", { class: "field" }, h("label", { for: "media-sort" }, "Sort"), sortSelect),
      h("span", { class: "field" }, h("label", { for: "media-kind" }, "Show"), kindSelect)),
    grid, sentinel,
  );
  const stopObserving = whenNear(sentinel, () => { if (drawn < items.length) drawMore(); });
  if (route.file) syncLightbox(route.file);
  return {
    destroy() {
      stopObserving();
      lightbox.destroy();
    },
    update(next) {
      if (next.view !== "model" || next.site !== site || next.model !== model) return false;
      const wanted = arrangementOf(next);
      if (wanted.sort !== arrangement.sort || wanted.order !== arrangement.order || wanted.kind !== arrangement.kind) {
        arrangement = wanted; // back/forward between arrangements
        sortSelect.value = `${wanted.sort}:${wanted.order}`;
        kindSelect.value = wanted.kind;
        redraw();
      }
      syncLightbox(next.file);
      return true;
    },
    onLibraryChanged(event) {
      if (event.site === site && (!event.model || event.model === model) && !lightbox.isOpen) load().catch(ctx.error);
    },
  };
}

// Similar images: start or cancel a similar-image scan and follow it live (the shared scan
// panel), choose how alike images must be (the threshold: bits of the perceptual hash that may
// differ, kept in the URL), then review the groups side by side at one size, best quality
// first, compare two members (overlay or split), keep one image of a group (the others go to
// the trash after a confirm that lists them, with an Undo) or clean up every group by a rule
// (keep the largest dimensions, or the copy in a site: preview, then confirm).
import { ApiError, api, formatBytes, formatDate, formatDuration, formatNumber, mediaUrl, plural, thumbUrl, withWidth } from "../api.js";
import { bulkPanel, groupList, keepOne, pathWithModelLink } from "../cleanup.js";
import { describeImage, dimensions, openCompare } from "../compare.js";
import { debounce, h, clear, confirmAction } from "../dom.js";
import { scanPanel } from "../scan-panel.js";

const RULES = [
  ["largest_dimensions", "the largest dimensions"],
  ["in_site", "the copy in a site"],
];
const WHERE = "similar images"; // "Scan again to see them among the similar images"

// the URL's threshold: a whole number, or null (the server's default)
const thresholdOf = (route) => (/^\d{1,3}$/.test(route.threshold || "") ? Number(route.threshold) : null);

export async function similarView(main, route, ctx) {
  document.title = "Similar images · archive-catalog";
  let threshold = thresholdOf(route);
  let resultsId = null;
  let loading = null; // the AbortController of the fetch in flight
  const panel = scanPanel({
    kind: "similar",
    label: "Similar-image scan",
    ctx,
    onFinished: (scanId) => {
      if (scanId !== resultsId) load().catch(ctx.error);
    },
  });

  // the threshold: a slider and a number box that move together; the results follow
  const slider = h("input", { type: "range", id: "similar-threshold", min: 0, step: 1, "aria-describedby": "threshold-help" });
  const number = h("input", { type: "number", id: "similar-threshold-number", min: 0, step: 1, inputmode: "numeric", "aria-describedby": "threshold-help" });
  const help = h("p", { class: "meta", id: "threshold-help" });
  const thresholdField = h("div", { class: "threshold", hidden: true },
    h("label", { for: "similar-threshold" }, "Similarity threshold"), slider,
    h("label", { for: "similar-threshold-number", class: "visually-hidden" }, "Similarity threshold, in bits"), number,
    help);
  const refetch = debounce(() => load().catch(ctx.error), 250);
  function choose(value) {
    const max = Number(slider.max) || 64;
    if (!Number.isInteger(value) || value < 0 || value > max) return;
    slider.value = number.value = String(value);
    if (value === threshold) return;
    threshold = value;
    ctx.replace({ view: "similar", threshold: String(value) });
    refetch();
  }
  slider.addEventListener("input", () => choose(Number(slider.value)));
  number.addEventListener("input", () => choose(Number(number.value)));

  const summary = h("p", { class: "meta", id: "similar-summary", role: "status" });
  const groupsHolder = h("div", { class: "group-holder" });
  const bulk = bulkPanel({
    ctx,
    endpoint: "/api/similar/resolve",
    rules: RULES,
    request: () => ({ threshold }),
    confirmFirst: true,
    where: WHERE,
    done: () => load(),
  });
  bulk.element.hidden = true;
  const results = h("section", { class: "results", "aria-labelledby": "results-title" },
    h("h2", { id: "results-title" }, "Results"), thresholdField, summary, bulk.element, groupsHolder);

  clear(main, h("h1", { tabindex: "-1" }, "Similar images"), panel.element, results);

  async function load() {
    loading?.abort();
    const mine = (loading = new AbortController());
    let body;
    try {
      body = await api("/api/similar", { params: { threshold }, signal: mine.signal });
    } catch (error) {
      if (error?.name === "AbortError") return;
      if (error instanceof ApiError && error.status === 400 && threshold !== null) {
        // a threshold out of range (a hand-edited URL): say so, then show the default's groups
        ctx.error(error, "That threshold cannot be used");
        threshold = null;
        ctx.replace({ view: "similar" });
        return load();
      }
      if (error instanceof ApiError && error.status === 404) {
        thresholdField.hidden = bulk.element.hidden = true;
        summary.textContent = error.code === "no_similar_scan"
          ? "No similar-image scan has finished yet: start one above."
          : "Similar images are not available on this server yet.";
        clear(groupsHolder);
        return;
      }
      throw error;
    } finally {
      if (loading === mine) loading = null;
    }
    resultsId = body.scan_id;
    draw(body);
  }

  function draw(body) {
    threshold = body.threshold;
    slider.max = number.max = String(body.max_threshold);
    slider.value = number.value = String(body.threshold);
    help.textContent = `Bits of the 64-bit perceptual hash that may differ: 0 finds only near-identical copies; higher also finds re-encoded, resized and lightly edited ones, and in the end different pictures. Default ${body.default_threshold}, at most ${body.max_threshold}.`;
    thresholdField.hidden = false;
    const groups = (body.groups || []).filter((group) => group.files.length >= 2);
    const s = body.stats || {};
    function updateSummary() {
      const wasted = groups.reduce((sum, group) => sum + group.wasted, 0);
      const scanned = `hashed ${plural(s.images || 0, "image")} (${formatNumber(s.cache_hits || 0)} from the cache) in ${formatDuration(s.duration_s)}, finished ${formatDate(body.finished_at)}`;
      summary.textContent = groups.length
        ? `${plural(groups.length, "group")} of similar images at threshold ${body.threshold} · ${formatBytes(wasted)} could be freed · ${scanned}`
        : `No similar images at threshold ${body.threshold}: ${scanned}.`;
    }
    updateSummary();
    bulk.reset();
    bulk.element.hidden = groups.length === 0;
    clear(groupsHolder, groupList(groups, groupView, updateSummary));
  }

  function groupView(group, removed) {
    const compare = h("button", { type: "button", class: "secondary", "aria-label": `Compare two images of the group of ${group.files[0].path}` }, "Compare");
    compare.addEventListener("click", () => openCompare(group.files, { opener: compare }));
    const files = h("ul", { class: "similar-files" });
    group.files.forEach((file, index) => files.append(memberView(group, file, index, removed)));
    const differ = group.max_distance ? `differ by up to ${plural(group.max_distance, "bit")}` : "identical hashes";
    return h("li", { class: "group" },
      h("div", { class: "group-heading" },
        h("h3", { tabindex: "-1" }, `${group.files.length} similar images · ${formatBytes(group.wasted)} could be freed · ${differ}`),
        compare),
      files);
  }

  function memberView(group, file, index, removed) {
    const best = index === 0;
    return h("li", { class: best ? "similar best" : "similar" },
      h("a", { href: mediaUrl(file.path), class: "similar-thumb", target: "_blank", rel: "noopener" },
        h("img", { src: withWidth(thumbUrl(file.path), 320, file.mtime), alt: file.path, loading: "lazy", decoding: "async", width: 320, height: 240 })),
      best
        ? h("p", { class: "quality best-mark" }, "Best quality")
        : h("p", { class: "quality meta" }, `${plural(file.distance, "bit")} from the best`),
      h("p", { class: "dims" }, h("strong", {}, dimensions(file)), ` · ${file.format} · ${formatBytes(file.size)}`),
      pathWithModelLink(ctx, file.path),
      h("p", { class: "meta date" }, formatDate(file.mtime)),
      h("button", { type: "button", class: "primary", "aria-label": `Keep this one: ${file.path}`, onclick: () => keep(group, file, removed) }, "Keep this one"));
  }

  async function keep(group, file, removed) {
    const others = group.files.filter((other) => other.path !== file.path);
    if (!others.length) return; // the last copy is never offered for removal
    const bytes = others.reduce((sum, other) => sum + other.size, 0);
    const ok = await confirmAction({
      title: "Keep this image?",
      text: `Keep ${file.path} (${describeImage(file)}) and move ${plural(others.length, "other image")} (${formatBytes(bytes)}) to the trash, where they can be restored:`,
      items: others.map((other) => `${other.path} · ${describeImage(other)}`),
      confirm: `Move ${plural(others.length, "image")} to the trash`,
    });
    if (!ok) return;
    const body = { keep: file.path, delete: others.map((other) => other.path), threshold };
    await keepOne(ctx, { endpoint: "/api/similar/delete", body, where: WHERE, removed });
  }

  await panel.sync();
  await load();
  return {
    // a new threshold in the URL (back, forward) refetches; the view stays mounted
    update(next) {
      if (next.view !== "similar") return false;
      const wanted = thresholdOf(next); // null: the server's default
      if (wanted !== threshold) {
        threshold = wanted;
        load().catch(ctx.error);
      }
      return true;
    },
    destroy() {
      loading?.abort();
      panel.destroy();
      document.getElementById("compare")?.close();
    },
  };
}

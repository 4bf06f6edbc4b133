"""The Similar images view (issue #15) in Debian's headless Chromium, against the real server.

The harness is tests/test_browser.py's (a real server on a loopback port, a Session that fails
the test on any page error, axe-core), over a library of near-copies made here with Pillow: one
picture, resized to half and re-encoded as WebP, and lightly cropped with a caption drawn on,
in other sites and models; a second re-encoded at a lower JPEG quality; a third unlike both.
What a group must hold at a threshold comes from the server's own hash of each file, never
from a number written here. Set UPDATE_SCREENSHOTS=1 to write docs/ui-similar.png.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image, ImageDraw

from server.app import create_app
from server.config import Config
from server.similar.phash import distance, hash_image

from .helpers import write
from .test_browser import (
    DOCS,
    Page,
    SessionFactory,
    assert_routes,
    browser,
    confirm,
    format_bytes,
    open_page,
    run_scan,
    serious_violations,
    server,
)

pytestmark = pytest.mark.browser
# tests/test_browser.py's fixtures (a browser, the server, a page factory): the tests here take them by name
HARNESS_FIXTURES = (browser, open_page, server)

SUNSET = "alpha/ana/sunset.jpg"  # 640 × 480, JPEG q92: the best copy
SUNSET_EDITED = "alpha/carla/sunset-edited.png"  # 5 % cropped off, a caption drawn on, PNG
SUNSET_SMALL = "beta/bruno/sunset-small.webp"  # resized to half, WebP
TOWER = "alpha/carla/tower.jpg"  # 500 × 500, JPEG q92
TOWER_LOW = "beta/dora/tower-q60.jpg"  # the same picture at JPEG quality 60
UNLIKE = "beta/dora/unlike.jpg"  # another picture: in no group
SUNSETS = [SUNSET, SUNSET_EDITED, SUNSET_SMALL]
TOWERS = [TOWER, TOWER_LOW]
ALL = [*SUNSETS, *TOWERS, UNLIKE]

SIMILAR_ROUTES = [("POST", "/api/scan"), ("GET", "/api/similar"), ("GET", "/ws")]


# -- the library -------------------------------------------------------------------------------


def picture(seed: int, size: tuple[int, int]) -> Image.Image:
    """A made-up photograph: a coloured ground and a few dozen overlapping shapes."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, tuple(rng.randrange(40, 200) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y, radius = rng.randrange(width), rng.randrange(height), rng.randrange(15, width // 4)
        colour = tuple(rng.randrange(256) for _ in range(3))
        box = (x - radius, y - radius, x + radius, y + radius)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    return image


def encoded(image: Image.Image, format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


@pytest.fixture
def library_root(tmp_path: Path) -> Path:
    """This module's library (conftest's `make_config` and so the `server` fixture use it)."""
    root = tmp_path / "library"
    sunset = picture(1, (640, 480))
    edited = sunset.crop((16, 12, 624, 468))
    ImageDraw.Draw(edited).text((20, 20), "(c) somebody's gallery", fill=(255, 255, 255))
    tower = picture(2, (500, 500))
    write(root / SUNSET, encoded(sunset, "JPEG", quality=92))
    write(root / SUNSET_EDITED, encoded(edited, "PNG"))
    write(root / SUNSET_SMALL, encoded(sunset.resize((320, 240), Image.Resampling.LANCZOS), "WEBP", quality=80))
    write(root / TOWER, encoded(tower, "JPEG", quality=92))
    write(root / TOWER_LOW, encoded(tower, "JPEG", quality=60))
    write(root / UNLIKE, encoded(picture(3, (600, 400)), "JPEG", quality=90))
    return root


def describe(root: Path, path: str) -> str:
    """What a tile must say of a file, read from the file itself: dimensions, format, size."""
    with Image.open(root / path) as image:
        width, height = image.size
        format = image.format
    return f"{width} × {height} · {format} · {format_bytes((root / path).stat().st_size)}"


def best_first(root: Path, paths: list[str]) -> list[str]:
    """The contract's order: largest pixel count, then largest file, then path."""

    def key(path: str) -> tuple[int, int, str]:
        with Image.open(root / path) as image:
            pixels = image.size[0] * image.size[1]
        return (-pixels, -(root / path).stat().st_size, path)

    return sorted(paths, key=key)


def hash_distance(root: Path, a: str, b: str) -> int:
    infos = [hash_image(str(root / path)) for path in (a, b)]
    assert infos[0] is not None and infos[1] is not None
    return distance(infos[0].phash, infos[1].phash)


async def similar_json(server: TestServer, threshold: int | None = None) -> dict[str, Any]:
    params = {} if threshold is None else {"threshold": str(threshold)}
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/api/similar"), params=params) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
    return body


async def trash_paths(server: TestServer) -> list[str]:
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/api/trash")) as response:
        body = await response.json()
    return sorted(f"{item['site']}/{item['model']}/{item['path']}" for item in body["items"])


async def shown_groups(page: Page) -> list[list[str]]:
    """The paths of each group on the page, in the page's order."""
    groups: list[list[str]] = await page.evaluate(
        "() => [...document.querySelectorAll('.group')]"
        ".map(g => [...g.querySelectorAll('.similar img')].map(i => i.alt))"
    )
    return groups


def check_routes(server: TestServer, *extra: tuple[str, str]) -> None:
    """The routes a test drives are registered (a missing one fails the test, never skips it)."""
    assert server.app is not None
    assert_routes(server.app, [*SIMILAR_ROUTES, *extra])


def contents(root: Path) -> dict[str, bytes]:
    """The library's files, byte for byte (a moved file is missing)."""
    return {path: (root / path).read_bytes() for path in ALL if (root / path).exists()}


async def open_scanned(open_page: SessionFactory, server: TestServer, *routes: tuple[str, str], **options: Any) -> Page:
    """The view after a similar scan, once the routes the test drives are checked."""
    check_routes(server, *routes)
    session = await open_page(**options)
    page = session.page
    await session.goto("/?view=similar")
    await page.locator("#live-status[data-state=open]").wait_for()
    await run_scan(page)
    return page


def group_of(page: Page, path: str) -> Any:
    return page.locator(".group", has=page.locator(f".similar img[alt='{path}']"))


# -- scan, groups, threshold ---------------------------------------------------------------------


async def test_a_similar_scan_shows_the_groups_best_first_with_dimensions(
    open_page: SessionFactory, server: TestServer, library_root: Path
) -> None:
    check_routes(server)
    session = await open_page()
    page = session.page
    await session.goto("/?view=similar")
    assert await page.locator("nav a[aria-current=page]").inner_text() == "Similar images"
    await page.locator("#similar-summary", has_text="No similar-image scan has finished yet").wait_for()
    await page.locator("#live-status[data-state=open]").wait_for()
    await run_scan(page)
    await page.locator("#scan-progress-label", has_text="Last scan finished · 100%").wait_for()
    assert "Images hashed" in await page.locator(".scan-details").inner_text()

    body = await similar_json(server)
    assert sorted(sorted(f["path"] for f in g["files"]) for g in body["groups"]) == [sorted(SUNSETS), sorted(TOWERS)]
    assert sorted(map(sorted, await shown_groups(page))) == [sorted(SUNSETS), sorted(TOWERS)]
    assert UNLIKE not in str(await shown_groups(page))
    summary = await page.locator("#similar-summary").inner_text()
    assert f"2 groups of similar images at threshold {body['default_threshold']}" in summary

    sunsets = group_of(page, SUNSET)
    tiles = sunsets.locator(".similar")
    order = best_first(library_root, SUNSETS)
    assert [await tiles.nth(i).locator("img").get_attribute("alt") for i in range(3)] == order
    for i, path in enumerate(order):
        tile = tiles.nth(i)
        assert await tile.locator(".dims").inner_text() == describe(library_root, path)
        assert ("Best quality" in await tile.inner_text()) == (i == 0)
    assert await tiles.first.evaluate("li => li.classList.contains('best')")
    # side by side at one display size, each picture drawn
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.similar img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    boxes = [await tiles.nth(i).locator(".similar-thumb").bounding_box() for i in range(3)]
    assert len({(round(b["width"]), round(b["height"])) for b in boxes}) == 1, boxes
    assert len({round(b["y"]) for b in boxes}) == 1, boxes

    # the exact-duplicates view hears of the similar scan but does not call it its own
    await page.get_by_role("link", name="Duplicates").click()
    await page.locator("main h1", has_text="Duplicates").wait_for()
    assert await page.locator("#scan-progress-label").inner_text() == "No scan running"


async def test_a_new_threshold_regroups_and_stays_in_the_url(
    open_page: SessionFactory, server: TestServer, library_root: Path
) -> None:
    page = await open_scanned(open_page, server)
    assert sorted(map(sorted, await shown_groups(page))) == [sorted(SUNSETS), sorted(TOWERS)]
    # the lowest threshold that still groups the edited copy, from the server's own hashes
    needed = min(hash_distance(library_root, SUNSET_EDITED, other) for other in (SUNSET, SUNSET_SMALL))
    close = hash_distance(library_root, SUNSET, SUNSET_SMALL)
    default = (await similar_json(server))["default_threshold"]
    assert close < needed <= default, "the edited copy must need a threshold above its others' and within the default"

    number = page.get_by_label("Similarity threshold, in bits")
    await number.fill(str(needed - 1))
    summary = page.locator("#similar-summary")
    await summary.filter(has_text=f"at threshold {needed - 1}").wait_for()
    await page.wait_for_function("() => document.querySelectorAll('.group .similar').length === 4")
    groups = await shown_groups(page)
    assert SUNSET_EDITED not in str(groups)
    assert groups == [[f["path"] for f in g["files"]] for g in (await similar_json(server, needed - 1))["groups"]]
    assert page.url.endswith(f"/?view=similar&threshold={needed - 1}")
    assert await page.locator("#similar-threshold").input_value() == str(needed - 1)

    # the slider, by keyboard: one step up brings the edited copy back
    await page.locator("#similar-threshold").focus()
    await page.keyboard.press("ArrowRight")
    await summary.filter(has_text=f"at threshold {needed}").wait_for()
    await page.wait_for_function("() => document.querySelectorAll('.group .similar').length === 5")
    assert await page.get_by_label("Similarity threshold, in bits").input_value() == str(needed)

    # a reload keeps the threshold
    await page.reload()
    await summary.filter(has_text=f"at threshold {needed}").wait_for()
    maximum = (await similar_json(server))["max_threshold"]
    assert await page.locator("#similar-threshold").get_attribute("max") == str(maximum)

    # a threshold past the maximum (a hand-edited address) is refused, and the default shown
    await page.goto(page.url.replace(f"threshold={needed}", f"threshold={maximum + 1}"))
    await page.locator("#alerts .alert", has_text="That threshold cannot be used").wait_for()
    await summary.filter(has_text=f"at threshold {default}").wait_for()
    assert page.url.endswith("/?view=similar")


# -- compare ---------------------------------------------------------------------------------------


async def test_compare_overlays_or_splits_two_images_by_keyboard(
    open_page: SessionFactory, server: TestServer, library_root: Path
) -> None:
    page = await open_scanned(open_page, server)
    order = best_first(library_root, SUNSETS)
    opener = group_of(page, SUNSET).get_by_role("button", name="Compare")
    await opener.click()
    dialog = page.locator("dialog#compare")
    await dialog.wait_for(state="visible")
    assert await page.evaluate("() => document.activeElement.id") == "compare-level"
    await page.wait_for_function(
        "() => ['.compare-a', '.compare-b']"
        ".every(s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; })"
    )
    box_a = await dialog.locator(".compare-a").bounding_box()
    box_b = await dialog.locator(".compare-b").bounding_box()
    assert box_a == box_b  # one size, one place: B lies exactly on A
    assert order[0] in await dialog.locator(".compare-captions").inner_text()

    b_style = "() => { const b = document.querySelector('.compare-b'); return [b.style.opacity, b.style.clipPath]; }"
    level = dialog.locator("#compare-level")
    await page.keyboard.press("Home")
    assert await page.evaluate(b_style) == ["0", "none"]
    assert await level.get_attribute("aria-valuetext") == "B at 0% opacity"
    await page.keyboard.press("End")
    assert (await page.evaluate(b_style))[0] == "1"

    await dialog.get_by_label("Split").check()
    await level.focus()
    await page.keyboard.press("Home")
    for _ in range(3):
        await page.keyboard.press("ArrowRight")
    opacity, clip = await page.evaluate(b_style)
    assert opacity == "1" and "3%" in clip
    assert await level.get_attribute("aria-valuetext") == "A left of 3%, B right of it"
    assert not await dialog.locator(".compare-divider").is_hidden()

    await dialog.get_by_label("Image B").select_option("2")  # the third member
    captions = await dialog.locator(".compare-captions").inner_text()
    assert order[2] in captions and order[1] not in captions
    await dialog.get_by_role("button", name="Swap A and B").click()
    assert await dialog.get_by_label("Image A").input_value() == "2"
    assert await serious_violations(page) == []

    await page.keyboard.press("Escape")
    await dialog.wait_for(state="hidden")
    assert await opener.evaluate("b => b === document.activeElement")


# -- keep one, cancel, bulk ------------------------------------------------------------------------


async def test_keep_one_lists_what_goes_moves_it_to_the_trash_and_the_trash_restores_it(
    open_page: SessionFactory, server: TestServer, library_root: Path
) -> None:
    root = library_root
    before = contents(root)
    page = await open_scanned(open_page, server, ("POST", "/api/similar/delete"), ("POST", "/api/trash/restore"))
    await group_of(page, SUNSET).get_by_role("button", name=f"Keep this one: {SUNSET}").click()
    listed = await page.locator("#confirm-list li").all_inner_texts()
    assert listed == [f"{path} · {describe(root, path)}" for path in best_first(root, SUNSETS)[1:]]
    await confirm(page, "move 2 other images")
    await page.locator("#notices .notice", has_text="Moved 2 files to the trash").wait_for()
    await page.wait_for_function("() => document.querySelectorAll('.group').length === 1")
    assert await page.evaluate("() => document.activeElement.tagName") == "H3"  # focus stays in the results
    assert (root / SUNSET).read_bytes() == before[SUNSET]
    assert not (root / SUNSET_EDITED).exists() and not (root / SUNSET_SMALL).exists()
    assert await trash_paths(server) == sorted([SUNSET_EDITED, SUNSET_SMALL])

    await page.get_by_role("link", name="Trash").click()
    items = page.locator(".trash-item")
    await items.nth(1).wait_for()
    assert await items.count() == 2
    await page.get_by_label("Select all").check()
    await page.get_by_role("button", name="Restore selected").click()
    await page.wait_for_function("() => document.querySelector('main .meta')?.textContent === 'The trash is empty.'")
    assert contents(root) == before


async def test_going_back_from_the_confirm_moves_nothing(
    open_page: SessionFactory, server: TestServer, library_root: Path
) -> None:
    root = library_root
    before = contents(root)
    page = await open_scanned(open_page, server, ("POST", "/api/similar/delete"))
    deletes: list[str] = []
    page.on("request", lambda r: deletes.append(r.url) if "/api/similar/delete" in r.url else None)
    await group_of(page, SUNSET).get_by_role("button", name=f"Keep this one: {SUNSET_SMALL}").click()
    dialog = page.locator("dialog#confirm")
    await dialog.wait_for(state="visible")
    assert sorted(await page.locator("#confirm-list li").all_inner_texts()) == sorted(
        f"{path} · {describe(root, path)}" for path in (SUNSET, SUNSET_EDITED)
    )
    await dialog.get_by_role("button", name="Go back").click()
    await dialog.wait_for(state="hidden")
    assert deletes == []
    assert contents(root) == before
    assert await trash_paths(server) == []
    assert sorted(map(sorted, await shown_groups(page))) == [sorted(SUNSETS), sorted(TOWERS)]


async def test_bulk_rule_previews_then_moves_only_once_confirmed(
    open_page: SessionFactory, server: TestServer, library_root: Path
) -> None:
    root = library_root
    before = contents(root)
    page = await open_scanned(open_page, server, ("POST", "/api/similar/resolve"), ("POST", "/api/trash/restore"))
    rule = page.get_by_label("Keep in each group")
    preview = page.locator("#bulk-preview")

    # keep the largest dimensions: the best copy of each group stays
    await rule.select_option("largest_dimensions")
    await page.get_by_role("button", name="Preview").click()
    await preview.filter(has_text="2 groups · 3 files").wait_for()
    listing = page.locator(".bulk-list")
    await listing.locator("summary").click()
    kept = {best_first(root, SUNSETS)[0], best_first(root, TOWERS)[0]}
    lines = await listing.locator("li").all_inner_texts()
    assert sorted(line.split(" (keeps ")[0] for line in lines) == sorted(set(ALL) - kept - {UNLIKE})
    assert all(line.split(" (keeps ")[1].rstrip(")") in kept for line in lines)

    # keep the copy in a site: beta holds one copy of each group, best or not
    await rule.select_option("in_site")
    assert await preview.inner_text() == ""  # a changed rule drops the old preview
    await page.get_by_label("Site").fill("beta")
    await page.get_by_role("button", name="Preview").click()
    moved = [SUNSET, SUNSET_EDITED, TOWER]
    expected = f"2 groups · 3 files · {format_bytes(sum(len(before[p]) for p in moved))} to the trash"
    await preview.filter(has_text=expected).wait_for()
    assert contents(root) == before  # a preview moves nothing
    assert await serious_violations(page) == []

    apply = page.get_by_role("button", name="Move 3 files to the trash")
    await apply.click()
    dialog = page.locator("dialog#confirm")
    await dialog.wait_for(state="visible")
    assert sorted(await page.locator("#confirm-list li").all_inner_texts()) == sorted(moved)
    await dialog.get_by_role("button", name="Go back").click()
    await dialog.wait_for(state="hidden")
    assert contents(root) == before

    await apply.click()
    await confirm(page, "move 3 files")
    notice = page.locator("#notices .notice", has_text="Moved 3 files to the trash")
    await notice.wait_for()
    await page.locator("#similar-summary", has_text="No similar images").wait_for()
    assert not any((root / path).exists() for path in moved)
    assert (root / SUNSET_SMALL).exists() and (root / TOWER_LOW).exists() and (root / UNLIKE).exists()
    assert await trash_paths(server) == sorted(moved)
    await notice.get_by_role("button", name="Undo").click()
    await page.locator("#notices .notice", has_text="Restored 3 files").wait_for()
    assert contents(root) == before


# -- accessibility, layout, screenshot -------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_similar_view_its_compare_and_its_confirm_are_accessible(
    open_page: SessionFactory, server: TestServer, scheme: str
) -> None:
    check_routes(server)
    session = await open_page(color_scheme=scheme)
    page = session.page
    problems: dict[str, list[str]] = {}
    await session.goto("/?view=similar")
    await page.locator("#similar-summary", has_text="No similar-image scan").wait_for()
    problems["before a scan"] = await serious_violations(page)
    await run_scan(page)
    await page.wait_for_load_state("networkidle")
    problems["groups"] = await serious_violations(page)
    await page.locator(".group").first.get_by_role("button", name="Compare").click()
    await page.locator("dialog#compare .compare-b").wait_for()
    problems["compare"] = await serious_violations(page)
    await page.keyboard.press("Escape")
    await page.locator(".group").first.get_by_role("button", name="Keep this one").first.click()
    await page.locator("#confirm-list li").first.wait_for()
    problems["confirm"] = await serious_violations(page)
    await page.keyboard.press("Escape")
    assert {name: found for name, found in problems.items() if found} == {}


async def test_the_similar_view_and_its_compare_fit_a_phone(open_page: SessionFactory, server: TestServer) -> None:
    page = await open_scanned(open_page, server, width=390, height=844, is_mobile=True, has_touch=True)
    widths = "() => [document.documentElement.scrollWidth, document.body.scrollWidth]"
    assert max(await page.evaluate(widths)) <= 390
    await page.locator(".group").first.get_by_role("button", name="Compare").click()
    stage = page.locator("dialog#compare .compare-stage")
    await stage.wait_for()
    assert max(await page.evaluate(widths)) <= 390
    box = await stage.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box


async def test_screenshot_of_the_similar_view(
    browser: Any, aiohttp_server: Any, make_config: Callable[..., Config], tmp_path: Path
) -> None:
    """The README's picture of the view after a scan (written to docs/ with UPDATE_SCREENSHOTS=1)."""
    app = create_app(make_config())
    test_server = await aiohttp_server(app, host="127.0.0.1")
    target = DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "shots"
    target.mkdir(exist_ok=True)
    context = await browser.new_context(viewport={"width": 1100, "height": 700})
    page = await context.new_page()
    await page.goto(str(test_server.make_url("/?view=similar")))
    await page.wait_for_selector("main h1")
    await run_scan(page)
    await page.wait_for_load_state("networkidle")
    await page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    # the results under the sticky header: the threshold, the bulk panel and the first groups
    await page.evaluate("() => scrollTo(0, document.querySelector('#results-title').getBoundingClientRect().top - 64)")
    file = target / "ui-similar.png"
    await page.screenshot(path=str(file))
    await context.close()
    with Image.open(file) as image:
        assert image.format == "PNG" and image.size[0] == 1100
    assert file.stat().st_size < 400_000

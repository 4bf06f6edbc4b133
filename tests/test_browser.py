"""The browser app in Debian's headless Chromium, driven by Playwright, against the real server.

The server runs in-process on a free loopback port over a small library in tmp_path. A test
whose route (downloads, scan, duplicates) is not registered fails, never skips. Without chromium
these tests skip, except under CI=true where they fail. axe-core checks every main view.
Set UPDATE_SCREENSHOTS=1 to write the screenshots of the main views into docs/.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import shutil
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from server import keys
from server.app import create_app
from server.config import Config
from server.demo import ensure_demo_library

from .helpers import jpeg_bytes, make_video, write

playwright_api = pytest.importorskip("playwright.async_api")
axe_module = pytest.importorskip("axe_playwright_python.async_playwright")

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
CI = os.environ.get("CI") == "true"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[1] / "docs"

Page = Any  # playwright.async_api.Page (untyped for mypy-free tests)


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        if CI:
            pytest.fail("chromium is not installed, and CI=true forbids skipping the browser tests")
        pytest.skip("chromium is not installed")
    async with playwright_api.async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
def duplicate_library(library_root: Path) -> Path:
    """The test library plus known duplicates: one image in three places, one in two."""
    original = (library_root / "alpha" / "ana" / "img1.jpg").read_bytes()
    write(library_root / "alpha" / "bruno" / "copy-of-img1.jpg", original)
    write(library_root / "beta" / "patreon" / "joão" / "img1-again.jpg", original)
    second = (library_root / "alpha" / "Carla" / "only.jpg").read_bytes()
    write(library_root / "beta" / "patreon" / "joão" / "only-copy.jpg", second)
    return library_root


@pytest.fixture
async def server(aiohttp_server: Any, make_config: Callable[..., Config]) -> TestServer:
    app = create_app(make_config())
    test_server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    return test_server


class Session:
    """A page on the running server that records what went wrong in the browser."""

    def __init__(self, page: Page, base: str, app: web.Application) -> None:
        self.page = page
        self.base = base
        self.app = app
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = message.text
        if "WebSocket connection to" in text and "/ws" in text:
            return  # a refused or cut live channel: the page shows "Offline" and retries, by design
        if "Failed to load resource" in text and re.search(r"status of (4\d\d)", text):
            return  # an API error the test provoked; the page shows it (checked separately)
        self.errors.append(text)

    async def goto(self, path: str) -> None:
        await self.page.goto(self.base + path)
        await self.page.wait_for_selector("main h1")

    def url_query(self) -> str:
        return str(self.page.url).removeprefix(self.base)


SessionFactory = Callable[..., Awaitable[Session]]


@pytest.fixture
async def open_page(browser: Any, server: TestServer) -> AsyncIterator[SessionFactory]:
    contexts: list[Any] = []
    sessions: list[Session] = []

    async def build(width: int = 1280, height: int = 800, **options: Any) -> Session:
        context = await browser.new_context(viewport={"width": width, "height": height}, **options)
        contexts.append(context)
        context.set_default_timeout(10_000)
        page = await context.new_page()
        assert server.app is not None
        session = Session(page, str(server.make_url("")).rstrip("/"), server.app)
        sessions.append(session)
        return session

    yield build
    for context in contexts:
        await context.close()
    for session in sessions:
        assert session.errors == [], session.errors


def has_route(app: web.Application, method: str, path: str) -> bool:
    for route in app.router.routes():
        resource = route.resource
        if resource is not None and route.method == method and resource.canonical == path:
            return True
    return False


def assert_routes(app: web.Application, routes: list[tuple[str, str]]) -> None:
    """The routes a test drives are registered: a missing one fails the test, it never skips it."""
    missing = [f"{method} {path}" for method, path in routes if not has_route(app, method, path)]
    assert not missing, f"routes not registered: {', '.join(missing)}"


async def model_names(page: Page) -> list[str]:
    names: list[str] = await page.locator(".model-grid .model-name").all_text_contents()
    return names


async def wait_for_thumbnail(page: Page, selector: str) -> None:
    await page.wait_for_function(
        "sel => { const img = document.querySelector(sel); return img && img.complete && img.naturalWidth > 0; }",
        arg=selector,
    )


async def confirm(page: Page, expected_text: str) -> str:
    dialog = page.locator("dialog#confirm")
    await dialog.wait_for(state="visible")
    text: str = await dialog.locator("#confirm-text").inner_text()
    assert expected_text in text, text
    await dialog.locator("#confirm-ok").click()
    await dialog.wait_for(state="hidden")
    return text


async def serious_violations(page: Page) -> list[str]:
    results = await axe_module.Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


# -- browse ------------------------------------------------------------------------------


async def test_browse_site_model_lightbox_and_history(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/")
    assert await page.locator("html").get_attribute("lang") == "en"
    site_card = page.locator(".site-card", has_text="alpha")
    assert "3 models" in await site_card.inner_text()
    await site_card.get_by_role("link", name="alpha").click()
    await page.wait_for_selector(".model-grid .model-card")
    assert session.url_query() == "/?site=alpha"
    assert await model_names(page) == ["ana", "bruno", "Carla"]
    await wait_for_thumbnail(page, ".model-card img")
    natural = await page.locator(".model-card img").first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural == [320, 240]
    assert await page.locator(".model-card img").first.get_attribute("alt") == "Cover of ana"

    await page.get_by_role("link", name="ana", exact=True).click()
    await page.wait_for_selector(".media-grid .tile")
    assert session.url_query() == "/?site=alpha&model=ana"
    assert await page.locator(".media-grid .tile").count() == 5  # 4 images + 1 video
    await page.locator(".media-grid .tile").first.click()
    lightbox = page.locator("dialog#lightbox")
    await lightbox.wait_for(state="visible")
    assert await lightbox.get_attribute("open") is not None
    assert await lightbox.locator(".lb-counter").inner_text() == "1 / 5"
    await page.wait_for_function("() => document.querySelector('#lightbox img')?.naturalWidth === 32")
    assert "file=img1.jpg" in session.url_query()

    await page.keyboard.press("ArrowRight")
    assert await lightbox.locator(".lb-counter").inner_text() == "2 / 5"
    assert await lightbox.locator(".lb-title").inner_text() == "img2.jpg"
    assert "file=img2.jpg" in session.url_query()
    await page.keyboard.press("ArrowLeft")
    await page.keyboard.press("ArrowLeft")
    assert await lightbox.locator(".lb-counter").inner_text() == "5 / 5"  # wraps around to the video
    assert await lightbox.locator("video").count() == 1
    await page.keyboard.press("Escape")
    await lightbox.wait_for(state="hidden")
    await page.wait_for_function("() => !location.search.includes('file=')")
    assert session.url_query() == "/?site=alpha&model=ana"

    await page.go_back()
    await page.wait_for_selector(".model-grid .model-card")
    assert session.url_query() == "/?site=alpha"
    await page.go_forward()
    await page.wait_for_selector(".media-grid .tile")
    await page.reload()
    await page.wait_for_selector(".media-grid .tile")
    assert await page.locator("main h1").inner_text() == "ana"


async def test_shared_link_opens_the_lightbox_and_swipe_moves(open_page: SessionFactory) -> None:
    session = await open_page(width=390, height=844, has_touch=True, is_mobile=True)
    page = session.page
    await session.goto("/?site=alpha&model=ana&file=img10.jpg")
    lightbox = page.locator("dialog#lightbox")
    await lightbox.wait_for(state="visible")
    assert await lightbox.locator(".lb-title").inner_text() == "img10.jpg"
    counter = await lightbox.locator(".lb-counter").inner_text()
    await page.evaluate(
        """() => {
          const stage = document.querySelector('#lightbox .lb-media');
          const fire = (type, x) => stage.dispatchEvent(new PointerEvent(type,
            {pointerType: 'touch', clientX: x, clientY: 300, bubbles: true, isPrimary: true}));
          fire('pointerdown', 300); fire('pointerup', 120);
        }"""
    )
    assert await lightbox.locator(".lb-counter").inner_text() != counter
    await lightbox.get_by_role("button", name="Close").click()
    await lightbox.wait_for(state="hidden")
    await page.wait_for_function("() => !location.search.includes('file=')")
    assert session.url_query() == "/?site=alpha&model=ana"  # a shared link does not leave the app


async def test_search_narrows_the_grid_and_sort_orders_it(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha")
    await page.wait_for_selector(".model-card")
    search = page.get_by_role("searchbox")
    assert await search.get_attribute("type") == "search"
    await search.press_sequentially("ar")
    await page.wait_for_function("() => document.querySelectorAll('.model-card').length === 1")
    assert await model_names(page) == ["Carla"]
    assert "1 of 1 model" in await page.locator(".count").inner_text()
    assert "q=ar" in session.url_query()
    await page.reload()
    await page.wait_for_selector(".model-card")
    assert await page.get_by_role("searchbox").input_value() == "ar"
    assert await model_names(page) == ["Carla"]

    await page.get_by_role("searchbox").fill("")
    await page.wait_for_function("() => document.querySelectorAll('.model-card').length === 3")
    await page.get_by_label("Sort").select_option(label="Most files")
    await page.wait_for_function("() => document.querySelector('.model-name')?.textContent === 'ana'")
    assert await model_names(page) == ["ana", "bruno", "Carla"]
    await page.get_by_label("Sort").select_option(label="Name (Z–A)")
    await page.wait_for_function("() => document.querySelector('.model-name')?.textContent === 'Carla'")
    assert await model_names(page) == ["Carla", "bruno", "ana"]
    assert "order=desc" in session.url_query()

    await page.get_by_role("searchbox").fill("zzz")
    await page.wait_for_function("() => document.querySelector('.count')?.textContent.includes('No model matches')")


async def test_infinite_scroll_loads_pages_as_needed(open_page: SessionFactory, library_root: Path) -> None:
    data = jpeg_bytes(3)
    for index in range(300):
        write(library_root / "big" / f"model{index:03d}" / "a.jpg", data)
    session = await open_page(width=1280, height=400)
    page = session.page
    thumbs: list[str] = []
    page.on("request", lambda request: thumbs.append(request.url) if "/thumb/" in request.url else None)
    await session.goto("/?site=big")
    await page.wait_for_selector(".model-card")
    assert await page.locator(".model-card").count() == 60  # one page, not 300
    await page.wait_for_load_state("networkidle")
    # covers are fetched only near the screen (lazy loading), the first ones at once
    assert 8 <= len(thumbs) < 60, len(thumbs)
    for expected in (120, 180, 240, 300):
        await page.locator(".sentinel").scroll_into_view_if_needed()
        await page.wait_for_function(f"() => document.querySelectorAll('.model-card').length === {expected}")
    assert await page.locator(".load-more").is_hidden()
    assert "300 of 300 models" in await page.locator(".count").inner_text()


async def test_video_player_seeks_with_range(open_page: SessionFactory, library_root: Path) -> None:
    make_video(library_root / "alpha" / "Carla" / "movie.webm", 4, "-c:v", "libvpx-vp9", "-b:v", "200k")
    session = await open_page()
    page = session.page
    statuses: list[tuple[int, str | None]] = []

    def record(response: Any) -> None:
        if "/media/" in response.url and response.url.endswith(".webm"):
            statuses.append((response.status, response.request.headers.get("range")))

    page.on("response", record)
    await session.goto("/?site=alpha&model=Carla&file=movie.webm")
    video = page.locator("#lightbox video")
    await video.wait_for()
    await page.wait_for_function("() => document.querySelector('#lightbox video').readyState >= 1")
    duration = await video.evaluate("v => v.duration")
    assert 3.5 < duration < 4.5
    seeked = await video.evaluate(
        "v => new Promise(resolve => {"
        " v.addEventListener('seeked', () => resolve(v.currentTime), {once: true}); v.currentTime = 3; })"
    )
    assert abs(seeked - 3) < 0.5
    assert any(status == 206 for status, _ in statuses), statuses


async def test_header_search_finds_a_model_in_another_site_and_a_file(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha")
    box = page.get_by_role("textbox", name="Search the library by name")
    await box.fill("JOAO")
    await box.press("Enter")
    await page.wait_for_selector("main h1:has-text('Search')")
    assert session.url_query() == "/?view=search&q=JOAO"
    hit = page.get_by_role("link", name="patreon/joão in beta")
    await wait_for_thumbnail(page, ".model-grid .model-card img")
    assert await hit.locator("img").get_attribute("alt") == "Cover of patreon/joão"
    await hit.click()
    await page.wait_for_selector(".media-grid .tile")
    assert await page.locator("main h1").inner_text() == "patreon/joão"
    assert await box.input_value() == ""  # the box leaves the search behind with the results

    await box.fill("img10")
    await box.press("Enter")
    file_hit = page.get_by_role("link", name="img10.jpg in ana (alpha)")
    await file_hit.wait_for()
    assert "No model name matches." in await page.locator("main").inner_text()
    assert await box.input_value() == "img10"
    await file_hit.click()
    lightbox = page.locator("dialog#lightbox")
    await lightbox.wait_for(state="visible")
    assert await lightbox.locator(".lb-title").inner_text() == "img10.jpg"
    assert session.url_query() == "/?site=alpha&model=ana&file=img10.jpg"
    await page.keyboard.press("Escape")
    await lightbox.wait_for(state="hidden")
    await page.go_back()
    await page.wait_for_selector("main h1:has-text('Search')")
    assert await page.get_by_role("link", name="img10.jpg in ana (alpha)").count() == 1


async def tile_labels(page: Page) -> list[str]:
    labels = await page.locator(".media-grid .tile").evaluate_all(
        "tiles => tiles.map(t => t.getAttribute('aria-label'))"
    )
    return [str(label) for label in labels]


async def test_model_sort_by_size_puts_the_largest_first_and_filter_shows_only_videos(
    open_page: SessionFactory, library_root: Path
) -> None:
    write(library_root / "alpha" / "ana" / "zbig.jpg", jpeg_bytes(7, size=(400, 300)), mtime=1_600_000_000)
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha&model=ana")
    await page.wait_for_selector(".media-grid .tile")
    by_name = await tile_labels(page)
    assert by_name[-2:] == ["View zbig.jpg", "Play video clip.mp4"]  # by name: images, then videos
    caption = await page.locator(".media-grid li").first.inner_text()
    assert "img1.jpg" in caption and " B · " in caption and "2023" in caption  # name, size and date shown
    await page.get_by_label("Sort").select_option(label="Largest")
    await page.wait_for_function("() => document.querySelector('.media-grid .tile')?.ariaLabel === 'View zbig.jpg'")
    assert len(await tile_labels(page)) == 6
    assert "sort=size&order=desc" in session.url_query()
    await page.get_by_label("Sort").select_option(label="Oldest")
    await page.wait_for_function("() => document.querySelector('.media-grid .tile')?.ariaLabel === 'View zbig.jpg'")
    await page.get_by_label("Sort").select_option(label="Newest")
    await page.wait_for_function(
        "() => document.querySelector('.media-grid .tile')?.ariaLabel === 'Play video clip.mp4'"
    )
    assert (await tile_labels(page))[-1] == "View zbig.jpg"  # by date, videos and images mix

    await page.get_by_label("Show").select_option(label="Videos")
    await page.wait_for_function("() => document.querySelectorAll('.media-grid .tile').length === 1")
    assert await tile_labels(page) == ["Play video clip.mp4"]
    assert "kind=videos" in session.url_query()
    await page.reload()
    await page.wait_for_selector(".media-grid .tile")
    assert await tile_labels(page) == ["Play video clip.mp4"]
    assert await page.get_by_label("Show").input_value() == "videos"
    await page.locator(".media-grid .tile").first.click()
    await page.locator("dialog#lightbox").wait_for(state="visible")
    assert "kind=videos" in session.url_query() and "file=clip.mp4" in session.url_query()
    await page.keyboard.press("Escape")
    await page.wait_for_function("() => !location.search.includes('file=')")
    assert "kind=videos" in session.url_query()  # closing the viewer keeps the filter
    assert await tile_labels(page) == ["Play video clip.mp4"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_search_and_a_sorted_model_are_accessible_and_fit_a_phone(open_page: SessionFactory, scheme: str) -> None:
    session = await open_page(width=390, height=844, is_mobile=True, has_touch=True, color_scheme=scheme)
    page = session.page
    problems: dict[str, list[str]] = {}
    for path in ("/?view=search&q=a", "/?view=search&q=nothing-matches", "/?view=search",
                 "/?site=alpha&model=ana&sort=size&order=desc&kind=images"):  # fmt: skip
        await session.goto(path)
        await page.wait_for_load_state("networkidle")
        found = await serious_violations(page)
        if found:
            problems[path] = found
        width = await page.evaluate("() => [document.documentElement.scrollWidth, document.body.scrollWidth]")
        assert max(width) <= 390, (path, width)
    assert problems == {}


# -- manage --------------------------------------------------------------------------------


async def test_delete_file_then_restore_from_trash(open_page: SessionFactory, library_root: Path) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha&model=ana&file=img2.jpg")
    lightbox = page.locator("dialog#lightbox")
    await lightbox.wait_for(state="visible")
    await lightbox.get_by_role("button", name="Delete file").click()
    await confirm(page, "Move img2.jpg")
    await page.wait_for_function("() => document.querySelectorAll('.media-grid .tile').length === 4")
    assert not (library_root / "alpha" / "ana" / "img2.jpg").exists()
    assert "Moved img2.jpg to the trash" in await page.locator("#notices").inner_text()

    await page.keyboard.press("Escape")
    await lightbox.wait_for(state="hidden")
    await page.get_by_role("link", name="Trash").click()
    item = page.locator(".trash-item", has_text="alpha/ana/img2.jpg")
    await item.wait_for()
    await item.get_by_role("button", name="Restore").click()
    await page.wait_for_function("() => document.querySelector('main .meta')?.textContent === 'The trash is empty.'")
    assert (library_root / "alpha" / "ana" / "img2.jpg").exists()


async def test_a_restore_offered_after_a_delete_is_withdrawn_once_restored_elsewhere(
    open_page: SessionFactory, library_root: Path
) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha&model=ana&file=img2.jpg")
    lightbox = page.locator("dialog#lightbox")
    await lightbox.wait_for(state="visible")
    await lightbox.get_by_role("button", name="Delete file").click()
    await confirm(page, "Move img2.jpg")
    notice = page.locator("#notices .notice", has_text="Moved img2.jpg to the trash")
    await notice.get_by_role("button", name="Restore").wait_for()
    items = (await (await page.request.get(session.base + "/api/trash")).json())["items"]
    (item,) = [i for i in items if i["path"] == "img2.jpg"]
    restored = await page.request.post(f"{session.base}/api/trash/restore?id={item['id']}")  # another tab
    assert restored.status == 200
    await notice.get_by_text("Already restored.").wait_for()
    assert await notice.get_by_role("button").count() == 0
    assert (library_root / "alpha" / "ana" / "img2.jpg").exists()


async def test_delete_model_then_empty_trash(open_page: SessionFactory, library_root: Path) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha&model=bruno")
    await page.get_by_role("button", name="Delete model").click()
    await confirm(page, "bruno")
    await page.wait_for_function("() => location.search === '?site=alpha'")
    await page.wait_for_function("() => document.querySelectorAll('.model-card').length === 2")
    assert not (library_root / "alpha" / "bruno").exists()

    await page.get_by_role("link", name="Trash").click()
    await page.locator(".trash-item", has_text="alpha/bruno").wait_for()
    await page.get_by_role("button", name="Empty trash").click()
    text = await confirm(page, "Permanently delete 1 item")
    assert "cannot be undone" in text
    await page.wait_for_function("() => document.querySelector('main .meta')?.textContent === 'The trash is empty.'")
    assert "freed" in await page.locator("#notices").inner_text()


async def test_restore_from_the_notice_brings_the_model_back(open_page: SessionFactory, library_root: Path) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha&model=Carla")
    await page.get_by_role("button", name="Delete model").click()
    await confirm(page, "Carla")
    await page.wait_for_function("() => document.querySelectorAll('.model-card').length === 2")
    await page.locator("#notices").get_by_role("button", name="Restore").click()
    await page.wait_for_function("() => document.querySelectorAll('.model-card').length === 3")
    assert await model_names(page) == ["ana", "bruno", "Carla"]
    assert (library_root / "alpha" / "Carla" / "only.jpg").exists()


async def test_declining_a_confirmation_deletes_nothing(open_page: SessionFactory, library_root: Path) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha&model=Carla")
    await page.get_by_role("button", name="Delete model").click()
    await page.locator("dialog#confirm").get_by_role("button", name="Go back").click()
    await page.locator("dialog#confirm").wait_for(state="hidden")
    assert (library_root / "alpha" / "Carla" / "only.jpg").exists()


async def test_cache_panel_shows_stats_and_clears(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha")
    await wait_for_thumbnail(page, ".model-card img")
    await page.get_by_role("link", name="Cache").click()
    card = page.locator(".cache-card", has_text="thumbnail_cache")
    await card.wait_for()
    assert "entries" in await card.inner_text()
    for name in ("models_cache", "model_info_cache", "media_list_cache"):
        assert await page.locator(".cache-card", has_text=name).count() == 1
    await page.get_by_role("button", name="Clear caches").click()
    await page.locator("#notices", has_text="Cleared").wait_for()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.cache-card')].find(c => c.textContent.includes('thumbnail_cache'))"
        "?.querySelector('dd')?.textContent === '0'"
    )


async def test_api_errors_are_shown_to_the_person(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await page.goto(session.base + "/?site=nope")
    alert = page.locator("#alerts .alert")
    await alert.wait_for()
    assert "Unknown site 'nope'" in await alert.inner_text()
    assert await page.locator("#alerts").get_attribute("role") == "alert"
    await alert.get_by_role("button", name="Dismiss this message").click()
    assert await page.locator("#alerts .alert").count() == 0


async def test_trash_select_two_and_restore_selected(open_page: SessionFactory, library_root: Path) -> None:
    session = await open_page()
    trash = session.app[keys.TRASH]
    trash.delete_file("alpha", "ana", "img1.jpg")
    trash.delete_file("alpha", "ana", "img2.jpg")
    trash.delete_model("alpha", "bruno")
    page = session.page
    await session.goto("/?view=trash")
    await page.locator(".trash-item").nth(2).wait_for()
    restore = page.get_by_role("button", name="Restore selected")
    assert await restore.is_disabled()
    await page.get_by_role("checkbox", name="Select alpha/ana/img1.jpg").check()
    await page.get_by_role("checkbox", name="Select alpha/ana/img2.jpg").check()
    assert "2 items selected" in await page.locator(".trash-tools").inner_text()
    await restore.click()
    await page.wait_for_function("() => document.querySelectorAll('.trash-item').length === 1")
    assert (library_root / "alpha" / "ana" / "img1.jpg").exists()
    assert (library_root / "alpha" / "ana" / "img2.jpg").exists()
    assert not (library_root / "alpha" / "bruno").exists()
    assert "Restored 2 items" in await page.locator("#notices").inner_text()
    assert await page.locator(".trash-item", has_text="alpha/bruno").count() == 1


async def test_trash_delete_selected_for_good_once_confirmed(open_page: SessionFactory, library_root: Path) -> None:
    session = await open_page()
    trash = session.app[keys.TRASH]
    kept = trash.delete_file("alpha", "ana", "img1.jpg")
    gone = [trash.delete_file("alpha", "ana", "img2.jpg"), trash.delete_model("alpha", "bruno")]
    page = session.page
    await session.goto("/?view=trash")
    await page.locator(".trash-item").nth(2).wait_for()
    await page.get_by_role("checkbox", name="Select all").check()
    await page.get_by_role("checkbox", name="Select alpha/ana/img1.jpg").uncheck()
    assert await page.evaluate("() => document.getElementById('trash-select-all').indeterminate")
    await page.get_by_role("button", name="Delete selected for good").click()
    text = await confirm(page, "Permanently delete 2 selected items (")
    assert "cannot be undone" in text
    await page.wait_for_function("() => document.querySelectorAll('.trash-item').length === 1")
    assert "for good, freed" in await page.locator("#notices").inner_text()
    for item in gone:
        assert not (library_root / "alpha" / ".trash" / item.id).exists()
    assert (library_root / "alpha" / ".trash" / kept.id / "data").exists()
    assert not (library_root / "alpha" / "ana" / "img2.jpg").exists()  # deleted for good, not restored


async def test_trash_items_show_thumbnails_with_alt_text(open_page: SessionFactory) -> None:
    session = await open_page()
    trash = session.app[keys.TRASH]
    trash.delete_file("alpha", "ana", "img1.jpg")
    trash.delete_model("alpha", "Carla")
    page = session.page
    await session.goto("/?view=trash")
    await page.locator(".trash-item").nth(1).wait_for()
    for name in ("Preview of alpha/ana/img1.jpg", "First image of alpha/Carla"):
        image = page.get_by_role("img", name=name)
        await image.wait_for()
        await page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=await image.element_handle())
    missing = await page.evaluate("() => [...document.images].filter(i => !i.getAttribute('alt')).map(i => i.src)")
    assert missing == []


# -- downloads -------------------------------------------------------------------------------


async def test_download_button_gives_a_valid_zip(open_page: SessionFactory, server: TestServer) -> None:
    assert server.app is not None
    assert_routes(server.app, [("GET", "/api/download")])
    session = await open_page(accept_downloads=True)
    page = session.page
    await session.goto("/?site=alpha&model=ana")
    group = page.get_by_role("group", name="Download model")
    async with page.expect_download() as info:
        await group.get_by_role("link", name="ZIP", exact=True).click()
    download = await info.value
    data = Path(await download.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = sorted(archive.namelist())
    assert names == sorted(f"ana/{n}" for n in ["img1.jpg", "img2.jpg", "img10.jpg", "IMG3.PNG", "clip.mp4"])


async def test_selection_offers_downloads_of_the_chosen_models(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha")
    await page.get_by_label("Select ana").check()
    await page.get_by_label("Select Carla").check()
    bar = page.locator(".selection-bar")
    await bar.wait_for()
    assert "2 models selected" in await bar.inner_text()
    hrefs = [
        await bar.get_by_role("link", name=n, exact=True).get_attribute("href") for n in ("ZIP", "PDF", "PDFs (ZIP)")
    ]
    assert hrefs == [
        "/api/download?site=alpha&model=ana&model=Carla&format=zip",
        "/api/download?site=alpha&model=ana&model=Carla&format=pdf",
        "/api/download?site=alpha&model=ana&model=Carla&format=pdfs-zip",
    ]
    site_zip = page.get_by_role("group", name="Download site").get_by_role("link", name="ZIP", exact=True)
    assert await site_zip.get_attribute("href") == "/api/download?site=alpha&format=zip"
    await bar.get_by_role("button", name="Clear selection").click()
    await bar.wait_for(state="hidden")


async def open_viewer(session: Session, file: str = "img2.jpg") -> Any:
    """The lightbox on alpha/ana at `file`, its image loaded."""
    await session.goto(f"/?site=alpha&model=ana&file={file}")
    lightbox = session.page.locator("dialog#lightbox")
    await lightbox.wait_for(state="visible")
    return lightbox


async def test_viewer_home_and_end_go_to_the_first_and_last_file(open_page: SessionFactory) -> None:
    session = await open_page()
    lightbox = await open_viewer(session)
    await session.page.keyboard.press("End")
    assert await lightbox.locator(".lb-counter").inner_text() == "5 / 5"
    last = await lightbox.locator(".lb-title").inner_text()
    await session.page.wait_for_function("name => location.search.includes('file=' + name)", arg=last)
    await session.page.keyboard.press("Home")
    assert await lightbox.locator(".lb-counter").inner_text() == "1 / 5"
    await session.page.wait_for_function("() => location.search.includes('file=img1.jpg')")
    assert "file=img1.jpg" in session.url_query()


async def test_viewer_info_panel_shows_the_loaded_image_dimensions(open_page: SessionFactory) -> None:
    session = await open_page()
    lightbox = await open_viewer(session)
    page = session.page
    await page.wait_for_function("() => document.querySelector('#lightbox img')?.naturalWidth > 0")
    natural = await lightbox.locator("img").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    info = lightbox.get_by_role("complementary", name="File information")
    assert await info.is_hidden()
    await page.keyboard.press("i")
    await info.wait_for(state="visible")
    assert await lightbox.get_by_role("button", name="Info").get_attribute("aria-pressed") == "true"
    await page.wait_for_function(
        "text => document.querySelector('#lightbox .lb-dimensions').textContent === text",
        arg=f"{natural[0]} × {natural[1]} px",
    )
    text = await info.inner_text()
    assert "img2.jpg" in text and "Size" in text and "Date" in text
    await page.keyboard.press("ArrowRight")  # the panel stays open on the next file, with its figures
    assert await lightbox.locator(".lb-path").inner_text() != "img2.jpg"
    assert await info.is_visible()
    await page.keyboard.press("i")
    await info.wait_for(state="hidden")


async def test_viewer_double_click_zooms_and_drag_pans_the_image(open_page: SessionFactory) -> None:
    session = await open_page()
    lightbox = await open_viewer(session)
    image = lightbox.locator("img")
    await session.page.wait_for_function("() => document.querySelector('#lightbox img')?.naturalWidth > 0")
    assert await image.evaluate("img => img.style.transform") == ""
    await image.dblclick()
    transform = await image.evaluate("img => img.style.transform")
    assert "scale(2.5)" in transform, transform
    await image.evaluate(
        """img => {
          const box = img.getBoundingClientRect();
          const x = box.left + box.width / 2, y = box.top + box.height / 2;
          const fire = (type, dx) => img.dispatchEvent(new PointerEvent(type,
            {pointerId: 1, pointerType: 'mouse', button: 0, clientX: x + dx, clientY: y, bubbles: true}));
          fire('pointerdown', 0); fire('pointermove', 10); fire('pointerup', 10);
        }"""
    )
    assert await image.evaluate("img => img.style.transform") != transform  # panned
    assert await lightbox.locator(".lb-counter").inner_text() == "2 / 5"  # a pan is no swipe
    await image.dblclick()
    assert await image.evaluate("img => img.style.transform") == ""  # back to fit


async def test_viewer_pinch_zooms_the_image(open_page: SessionFactory) -> None:
    session = await open_page(width=390, height=844, has_touch=True, is_mobile=True)
    lightbox = await open_viewer(session)
    image = lightbox.locator("img")
    await session.page.wait_for_function("() => document.querySelector('#lightbox img')?.naturalWidth > 0")
    await image.evaluate(
        """img => {
          const box = img.getBoundingClientRect();
          const x = box.left + box.width / 2, y = box.top + box.height / 2;
          const fire = (type, id, dx) => img.dispatchEvent(new PointerEvent(type,
            {pointerId: id, pointerType: 'touch', clientX: x + dx, clientY: y, bubbles: true}));
          fire('pointerdown', 1, -10); fire('pointerdown', 2, 10);
          fire('pointermove', 1, -30); fire('pointermove', 2, 30);
          fire('pointerup', 1, -30); fire('pointerup', 2, 30);
        }"""
    )
    assert "scale(3)" in await image.evaluate("img => img.style.transform")
    assert await lightbox.locator(".lb-counter").inner_text() == "2 / 5"  # a pinch is no swipe


async def test_viewer_slideshow_advances_by_itself_and_any_key_stops_it(open_page: SessionFactory) -> None:
    session = await open_page()
    lightbox = await open_viewer(session, "img1.jpg")
    page = session.page
    await page.evaluate("() => { document.getElementById('lightbox').dataset.slideshowMs = '50'; }")
    await page.keyboard.press("s")
    assert await lightbox.get_attribute("data-slideshow") == "running"
    await page.wait_for_function("() => document.querySelector('#lightbox .lb-counter').textContent === '3 / 5'")
    await page.keyboard.press("Shift")  # any key
    assert await lightbox.get_attribute("data-slideshow") is None
    counter = await lightbox.locator(".lb-counter").inner_text()
    await page.wait_for_timeout(300)  # six intervals: a running slideshow would have moved
    assert await lightbox.locator(".lb-counter").inner_text() == counter
    await lightbox.get_by_role("button", name="Slideshow").click()
    assert await lightbox.get_attribute("data-slideshow") == "running"
    await lightbox.locator(".lb-title").click()  # any click
    assert await lightbox.get_attribute("data-slideshow") is None


async def test_viewer_f_toggles_fullscreen_and_keys_never_fire_while_typing(open_page: SessionFactory) -> None:
    session = await open_page()
    lightbox = await open_viewer(session)
    page = session.page
    await page.keyboard.press("f")
    await page.wait_for_function("() => document.fullscreenElement === document.documentElement")
    assert await lightbox.is_visible()  # the viewer fills the fullscreen page
    await page.keyboard.press("f")
    await page.wait_for_function("() => document.fullscreenElement === null")
    await page.evaluate(
        "() => document.querySelector('#lightbox .lb-bar')"
        ".append(Object.assign(document.createElement('input'), {id: 'typed'}))"
    )
    await page.locator("#typed").type("sif")
    assert await page.locator("#typed").input_value() == "sif"
    assert await lightbox.get_attribute("data-slideshow") is None
    assert await lightbox.locator(".lb-info").is_hidden()
    assert await page.evaluate("() => document.fullscreenElement") is None


# -- scan and duplicates -----------------------------------------------------------------------

SCAN_ROUTES = [("POST", "/api/scan"), ("GET", "/api/duplicates"), ("GET", "/ws")]


async def run_scan(page: Page) -> None:
    await page.get_by_role("button", name="Start scan").click()
    await page.wait_for_function("() => document.querySelector('#scan-progress').value === 100", timeout=30_000)
    await page.locator(".group").first.wait_for(timeout=30_000)


async def test_scan_progress_reaches_100_and_groups_appear(
    open_page: SessionFactory, server: TestServer, duplicate_library: Path
) -> None:
    assert server.app is not None
    assert_routes(server.app, SCAN_ROUTES)
    session = await open_page()
    page = session.page
    await session.goto("/?view=duplicates")
    await page.locator("#live-status[data-state=open]").wait_for()
    progress = page.locator("progress#scan-progress")
    assert await progress.get_attribute("max") == "100"
    await run_scan(page)
    groups = page.locator(".group")
    assert await groups.count() == 2
    first = await groups.first.inner_text()
    assert "3 copies" in first  # largest waste first
    assert await groups.first.locator("img").count() == 3
    assert await page.get_by_role("button", name="Keep this one").count() == 5


async def test_keep_one_moves_the_others_to_the_trash_then_restore(
    open_page: SessionFactory, server: TestServer, duplicate_library: Path
) -> None:
    assert server.app is not None
    assert_routes(server.app, [*SCAN_ROUTES, ("POST", "/api/duplicates/delete")])
    session = await open_page()
    page = session.page
    await session.goto("/?view=duplicates")
    await run_scan(page)
    group = page.locator(".group", has_text="3 copies")
    await group.get_by_role("button", name="Keep this one: alpha/ana/img1.jpg").click()
    size = len((duplicate_library / "alpha" / "ana" / "img1.jpg").read_bytes())
    text = await confirm(page, "move 2 other copies to the trash")
    assert "frees" in text and ("B." in text or "KB." in text)
    await page.wait_for_function("() => document.querySelectorAll('.group').length === 1")
    assert (duplicate_library / "alpha" / "ana" / "img1.jpg").exists()
    assert not (duplicate_library / "alpha" / "bruno" / "copy-of-img1.jpg").exists()
    assert size > 0

    await page.get_by_role("link", name="Trash").click()
    await page.locator(".trash-item").nth(1).wait_for()
    assert await page.locator(".trash-item").count() == 2
    for _ in range(2):
        await page.locator(".trash-item").first.get_by_role("button", name="Restore").click()
        await page.wait_for_timeout(50)
    await page.wait_for_function("() => document.querySelector('main .meta')?.textContent === 'The trash is empty.'")
    assert (duplicate_library / "alpha" / "bruno" / "copy-of-img1.jpg").exists()
    assert (duplicate_library / "beta" / "patreon" / "joão" / "img1-again.jpg").exists()


class CuttableProxy:
    """A TCP proxy in front of the server whose connections can be cut, like a dropped network."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = False
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self.writers -= {writer, upstream_writer}

    def cut(self) -> None:
        self.down = True
        for writer in list(self.writers):
            writer.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_live_channel_reconnects_and_resyncs(
    open_page: SessionFactory, server: TestServer, duplicate_library: Path
) -> None:
    """A scan that runs while the page's connection is cut shows up once it reconnects."""
    assert server.app is not None
    assert_routes(server.app, SCAN_ROUTES)
    proxy = CuttableProxy(server.port or 0)
    await proxy.start()
    session = await open_page()
    try:
        session.base = f"http://127.0.0.1:{proxy.port}"
        page = session.page
        await session.goto("/?view=duplicates")
        await page.locator("#live-status[data-state=open]").wait_for()
        proxy.cut()
        await page.locator("#live-status[data-state=closed]").wait_for()
        assert await page.locator("#live-status").inner_text() == "Offline"

        async with aiohttp.ClientSession() as http:
            async with http.post(server.make_url("/api/scan")) as started:
                assert started.status == 202
            for _ in range(300):
                async with http.get(server.make_url("/api/scan_progress")) as progress:
                    if not (await progress.json())["running"]:
                        break
                await asyncio.sleep(0.1)
        assert await page.locator(".group").count() == 0

        proxy.down = False
        await page.locator("#live-status[data-state=open]").wait_for(timeout=20_000)
        await page.locator(".group").first.wait_for()  # resynced from the hello snapshot
        assert await page.locator("#scan-progress").evaluate("p => p.value") == 100
    finally:
        await session.page.close()  # before the proxy goes: nothing may load through a dead port after
        await proxy.close()
    # requests the page made while the link was deliberately cut failed, as they must
    session.errors[:] = [e for e in session.errors if "ERR_CONNECTION_REFUSED" not in e]


async def test_duplicates_view_says_so_when_a_scan_cannot_start(open_page: SessionFactory) -> None:
    """A refused scan start (the 404 of a server without the scan capability) shows an alert."""
    session = await open_page()
    page = session.page

    async def refuse_scan_start(route: Any) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        body = '{"error": "not_found", "message": "no such route"}'
        await route.fulfill(status=404, content_type="application/json", body=body)

    await page.route("**/api/scan", refuse_scan_start)
    await session.goto("/?view=duplicates")
    assert await page.get_by_role("button", name="Start scan").is_visible()
    await page.get_by_role("button", name="Start scan").click()
    await page.locator("#alerts .alert", has_text="Could not start the scan").wait_for()


async def test_scan_panel_says_the_same_live_and_after_a_reload(
    open_page: SessionFactory, server: TestServer, duplicate_library: Path
) -> None:
    assert server.app is not None
    assert_routes(server.app, [*SCAN_ROUTES, ("GET", "/api/scan_progress")])
    session = await open_page()
    page = session.page
    await session.goto("/?view=duplicates")
    await run_scan(page)
    label = page.locator("#scan-progress-label")
    await label.filter(has_text="Last scan finished · 100%").wait_for()
    live_details = await page.locator(".scan-details").inner_text()
    assert "Files compared" in live_details
    await page.reload()
    await page.locator(".group").first.wait_for()
    await label.filter(has_text="Last scan finished · 100%").wait_for()
    assert await page.locator(".scan-details").inner_text() == live_details


def format_bytes(count: int) -> str:
    """The page's formatBytes (api.js): decimal units, 2 decimals below 10, else 1."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000:
            return f"{count} B" if unit == "B" else f"{value:.{2 if value < 10 else 1}f} {unit}"
        value /= 1000
    return f"{value:.1f} PB"


async def test_bulk_clean_up_previews_moves_to_the_trash_and_undoes(
    open_page: SessionFactory, server: TestServer, duplicate_library: Path
) -> None:
    assert server.app is not None
    assert_routes(server.app, [*SCAN_ROUTES, ("POST", "/api/duplicates/resolve"), ("POST", "/api/trash/restore")])
    root = duplicate_library
    moved = ["alpha/bruno/copy-of-img1.jpg", "beta/patreon/joão/img1-again.jpg", "beta/patreon/joão/only-copy.jpg"]
    before = {path: (root / path).read_bytes() for path in moved}
    session = await open_page()
    page = session.page
    await session.goto("/?view=duplicates")
    await run_scan(page)
    await page.get_by_label("Keep in each group").select_option("in_model")
    assert await page.get_by_label("Model").is_visible()
    await page.get_by_label("Keep in each group").select_option("in_site")
    assert not await page.get_by_label("Model").is_visible()
    await page.get_by_label("Site").fill("alpha")
    await page.get_by_role("button", name="Preview").click()
    preview = page.locator("#bulk-preview")
    expected = f"2 groups · 3 files · {format_bytes(sum(len(data) for data in before.values()))} to the trash"
    await preview.filter(has_text=expected).wait_for()
    assert all((root / path).exists() for path in moved)  # a preview moves nothing
    assert await serious_violations(page) == []  # the groups and the bulk panel, preview shown

    await page.get_by_role("button", name="Move 3 files to the trash").click()
    notice = page.locator("#notices .notice", has_text="Moved 3 files to the trash")
    await notice.wait_for()
    await page.locator("#dupes-summary", has_text="No duplicates").wait_for()
    assert await page.locator(".group").count() == 0
    assert not any((root / path).exists() for path in moved)
    assert (root / "alpha/ana/img1.jpg").exists() and (root / "alpha/Carla/only.jpg").exists()
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/api/trash")) as response:
        trash = await response.json()
    assert sorted(f"{i['site']}/{i['model']}/{i['path']}" for i in trash["items"]) == sorted(moved)

    await notice.get_by_role("button", name="Undo").click()
    await page.locator("#notices .notice", has_text="Restored 3 files").wait_for()
    assert {path: (root / path).read_bytes() for path in moved} == before


async def test_keep_one_says_moved_to_the_trash_links_models_and_undoes(
    open_page: SessionFactory, server: TestServer, duplicate_library: Path
) -> None:
    assert server.app is not None
    assert_routes(server.app, [*SCAN_ROUTES, ("POST", "/api/duplicates/delete"), ("POST", "/api/trash/restore")])
    root = duplicate_library
    stamp = 1_577_966_400  # 2020-01-02 12:00 UTC
    os.utime(root / "alpha/bruno/copy-of-img1.jpg", (stamp, stamp))
    session = await open_page(timezone_id="UTC", locale="en-US")
    page = session.page
    head_requests: list[str] = []
    page.on("request", lambda r: head_requests.append(r.url) if r.method == "HEAD" else None)
    await session.goto("/?view=duplicates")
    await run_scan(page)
    group = page.locator(".group", has_text="3 copies")
    copy = group.locator(".dupe", has_text="copy-of-img1.jpg")
    assert "Jan 2, 2020" in await copy.locator(".date").inner_text()  # from the response, not one HEAD per file
    assert head_requests == []
    model_link = copy.get_by_role("link", name="alpha/bruno/", exact=True)
    assert await model_link.get_attribute("href") == "/?site=alpha&model=bruno"
    nested = group.locator(".dupe", has_text="img1-again.jpg")
    assert await nested.get_by_role("link").last.get_attribute("href") == "/?site=beta&model=patreon%2Fjo%C3%A3o"

    await group.get_by_role("button", name="Keep this one: alpha/ana/img1.jpg").click()
    await confirm(page, "move 2 other copies to the trash")
    notice = page.locator("#notices .notice", has_text="Moved 2 files to the trash")
    await notice.wait_for()
    assert "freed" not in await notice.inner_text()
    assert not (root / "alpha/bruno/copy-of-img1.jpg").exists()
    await notice.get_by_role("button", name="Undo").click()
    await page.locator("#notices .notice", has_text="Restored 2 files").wait_for()
    assert (root / "alpha/bruno/copy-of-img1.jpg").exists()
    assert (root / "beta/patreon/joão/img1-again.jpg").exists()

    # the restored copies are no longer in the results (scan again); each remaining copy's
    # folder opens its model page
    assert await page.locator(".group").count() == 1
    await page.get_by_role("link", name="alpha/Carla/", exact=True).click()
    await page.locator("main h1", has_text="Carla").wait_for()
    assert session.url_query() == "/?site=alpha&model=Carla"


# -- accessibility, layout, screenshots --------------------------------------------------------

MAIN_VIEWS = [
    ("sites", "/"),
    ("site", "/?site=alpha"),
    ("model", "/?site=alpha&model=ana"),
    ("lightbox", "/?site=alpha&model=ana&file=img1.jpg"),
    ("duplicates", "/?view=duplicates"),
    ("trash", "/?view=trash"),
    ("cache", "/?view=cache"),
]


async def settle(page: Page, name: str) -> None:
    await page.wait_for_load_state("networkidle")
    await page.wait_for_function(
        "() => [...document.images].filter(i => i.getBoundingClientRect().top < innerHeight).every(i => i.complete)"
    )
    if name in ("site", "model"):
        await page.locator("main img").first.wait_for()
        await wait_for_thumbnail(page, "main img")
    if name == "lightbox":
        await page.locator("dialog#lightbox[open] img").wait_for()
    if name == "trash":
        await page.wait_for_function("() => document.querySelector('main .meta')?.textContent")
    if name == "cache":
        await page.locator(".cache-card").first.wait_for()
    if name == "duplicates":
        await page.locator(".results h2").wait_for()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_main_views_have_no_serious_accessibility_violations(
    open_page: SessionFactory, server: TestServer, library_root: Path, scheme: str
) -> None:
    assert server.app is not None
    server.app[keys.TRASH].delete_file("alpha", "ana", "img2.jpg")  # so the trash view has an item
    session = await open_page(color_scheme=scheme)
    page = session.page
    problems: dict[str, list[str]] = {}
    for name, path in MAIN_VIEWS:
        await session.goto(path)
        await settle(page, name)
        found = await serious_violations(page)
        if found:
            problems[name] = found
    assert problems == {}


async def test_phone_width_has_no_horizontal_scroll(open_page: SessionFactory) -> None:
    session = await open_page(width=390, height=844, is_mobile=True, has_touch=True)
    page = session.page
    for name, path in MAIN_VIEWS:
        await session.goto(path)
        await settle(page, name)
        widths = await page.evaluate("() => [document.documentElement.scrollWidth, document.body.scrollWidth]")
        assert widths[0] <= 390 and widths[1] <= 390, (name, widths)


async def test_keyboard_focus_is_visible(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha")
    await page.locator(".model-card").first.wait_for()
    seen = 0
    for _ in range(8):
        await page.keyboard.press("Tab")
        style = await page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [document.activeElement.tagName, s.outlineStyle, parseFloat(s.outlineWidth)]; }"
        )
        if style[0] in ("A", "BUTTON", "INPUT", "SELECT"):
            assert style[1] != "none" and style[2] >= 2, style
            seen += 1
    assert seen >= 5


async def test_every_image_has_alt_text(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    for name, path in MAIN_VIEWS[:4]:
        await session.goto(path)
        await settle(page, name)
        missing = await page.evaluate("() => [...document.images].filter(i => !i.getAttribute('alt')).map(i => i.src)")
        assert missing == [], (name, missing)


async def test_screenshots_of_the_main_views(
    browser: Any, aiohttp_server: Any, make_config: Callable[..., Config], tmp_path: Path
) -> None:
    """The README's pictures, taken of the demo library (written to docs/ with UPDATE_SCREENSHOTS=1)."""
    demo = ensure_demo_library(tmp_path / "demo-cache")
    app = create_app(make_config(models_dir=demo))
    server = await aiohttp_server(app, host="127.0.0.1")
    base = str(server.make_url("")).rstrip("/")
    first_model = sorted(p.name for p in (demo / "gallery-one" / "bruno").iterdir() if p.suffix == ".jpg")[0]
    carla = sorted(p.name for p in (demo / "gallery-one" / "carla").iterdir() if p.suffix == ".jpg")
    app[keys.TRASH].delete_file("gallery-one", "carla", next(n for n in carla if not n.startswith("copy")))
    target = DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "shots"
    target.mkdir(exist_ok=True)
    model = "/?site=gallery-one&model=bruno"
    shots = [("sites", "/", 1100), ("site", "/?site=gallery-one", 1100), ("model", model, 1100),
             ("lightbox", f"{model}&file={first_model}", 1100), ("trash", "/?view=trash", 1100),
             ("duplicates", "/?view=duplicates", 1100), ("cache", "/?view=cache", 1100),
             ("site", "/?site=gallery-one", 390)]  # fmt: skip
    scanned = has_route(app, "POST", "/api/scan")
    for name, path, width in shots:
        context = await browser.new_context(viewport={"width": width, "height": 700 if width > 390 else 760})
        page = await context.new_page()
        await page.goto(base + path)
        await page.wait_for_selector("main h1")
        if name == "duplicates" and scanned:
            await run_scan(page)
            scanned = False
        await settle(page, name)
        file = target / f"ui-{name}{'-phone' if width == 390 else ''}.png"
        await page.screenshot(path=str(file))
        await context.close()
        with Image.open(file) as image:
            assert image.format == "PNG" and image.size[0] == width
        assert file.stat().st_size < 400_000


# -- states and small comforts ------------------------------------------------------------------


async def test_unknown_site_and_model_show_a_not_found_state_without_controls(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    for path, heading, back in [
        ("/?site=nope", "No site named “nope”", "Back to the sites"),
        ("/?site=nope&model=ana", "No site named “nope”", "Back to the sites"),
        ("/?site=alpha&model=nobody", "No model named “nobody” in alpha", "Back to alpha"),
    ]:
        await session.goto(path)
        await page.locator("main h1", has_text=heading).wait_for()
        for control in ("searchbox", "combobox"):
            assert await page.get_by_role(control).count() == 0, (path, control)
        assert await page.locator("main .downloads, main a[download], main button.danger").count() == 0, path
        await page.get_by_role("link", name=back).click()
        await page.locator(".site-card, .model-card").first.wait_for()
    assert session.url_query() == "/?site=alpha"
    assert await model_names(page) == ["ana", "bruno", "Carla"]


async def test_an_unplayable_video_says_so_and_offers_the_file(open_page: SessionFactory, library_root: Path) -> None:
    write(library_root / "alpha" / "Carla" / "broken.mkv", os.urandom(4096))
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha&model=Carla&file=broken.mkv")
    lightbox = page.locator("dialog#lightbox")
    message = lightbox.get_by_text("This file can't be played in the browser")
    await message.wait_for()
    assert await lightbox.locator("video").is_hidden()  # no player stuck at 0:00
    link = lightbox.get_by_role("link", name="Download broken.mkv")
    assert await link.get_attribute("href") == "/media/alpha/Carla/broken.mkv"
    assert await link.get_attribute("download") is not None


async def test_closing_the_lightbox_never_undoes_the_next_navigation(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha&model=ana")
    await page.locator(".media-grid .tile").first.click()
    lightbox = page.locator("dialog#lightbox")
    await lightbox.wait_for(state="visible")
    assert "file=img1.jpg" in session.url_query()
    # the viewer closes (as Esc does) and, right as it has, a link to another model is followed
    await page.evaluate(
        """() => {
          const link = Object.assign(document.createElement('a'), {href: '/?site=alpha&model=bruno'});
          link.dataset.nav = '';
          document.querySelector('main').append(link);
          const dialog = document.getElementById('lightbox');
          dialog.addEventListener('close', () => link.click(), {once: true});
          dialog.close();
        }"""
    )
    await page.locator("main h1", has_text="bruno").wait_for()
    await page.wait_for_function("() => document.querySelectorAll('.media-grid .tile').length === 2")
    await page.wait_for_load_state("networkidle")
    assert session.url_query() == "/?site=alpha&model=bruno"
    assert await page.locator("main h1").inner_text() == "bruno"
    assert await page.locator(".media-grid .tile").count() == 2
    zip_link = page.get_by_role("group", name="Download model").get_by_role("link", name="ZIP", exact=True)
    assert await zip_link.get_attribute("href") == "/api/download?site=alpha&model=bruno&format=zip"
    await page.go_back()  # the viewer's entry was left, so back is the model it was opened from
    await page.locator("main h1", has_text="ana").wait_for()
    assert session.url_query() == "/?site=alpha&model=ana"
    assert await lightbox.is_hidden()


async def test_cache_cards_have_readable_names_decimal_sizes_and_say_hashes_go_too(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?view=cache")
    await page.locator(".cache-card").first.wait_for()
    titles = await page.locator(".cache-card h2").evaluate_all(
        "hs => hs.map(h => [h.firstChild.textContent.trim(), h.querySelector('code').textContent])"
    )
    assert ["Site walks", "site_index_cache"] in titles
    for shown, key in titles:
        assert "_" not in shown and shown != key, (shown, key)
    downloads = await page.locator(".cache-card", has_text="download_cache").inner_text()
    assert "10.0 GB" in downloads  # the default --download-cache-max-gb 10: GB = 10^9 bytes
    thumbnails = await page.locator(".cache-card", has_text="thumbnail_cache").inner_text()
    assert "500.0 MB" in thumbnails
    assert "MiB" not in downloads + thumbnails and "GiB" not in downloads + thumbnails
    button = page.locator("#clear-cache")
    assert "hashes" in (await button.inner_text()).lower()
    await button.click()
    notice = page.locator("#notices .notice", has_text="Cleared")
    await notice.wait_for()
    assert "hashes" in await notice.inner_text()


async def test_a_zero_byte_image_is_shown_as_an_empty_file(open_page: SessionFactory, library_root: Path) -> None:
    write(library_root / "alpha" / "bruno" / "zero.jpg", b"")
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha&model=bruno")
    empty = page.get_by_role("button", name="zero.jpg: empty file")
    await empty.wait_for()
    assert await empty.inner_text() == "empty file"
    assert await empty.locator("img").count() == 0
    await page.wait_for_load_state("networkidle")
    broken = await page.evaluate("() => [...document.images].filter(i => i.complete && !i.naturalWidth).length")
    assert broken == 0
    await empty.click()
    lightbox = page.locator("dialog#lightbox")
    await lightbox.wait_for(state="visible")
    assert await lightbox.locator(".lb-title").inner_text() == "zero.jpg"
    assert "This file is empty" in await lightbox.locator(".lb-media").inner_text()
    assert await lightbox.locator(".lb-media img").count() == 0


async def test_theme_toggle_cycles_is_remembered_and_applies_before_the_first_paint(open_page: SessionFactory) -> None:
    session = await open_page(color_scheme="light")
    page = session.page
    # what <html data-theme> says when <body> first exists: nothing can have been painted before that
    await page.add_init_script(
        """new MutationObserver((_, observer) => {
             if (document.body) { window.themeAtBody = document.documentElement.dataset.theme; observer.disconnect(); }
           }).observe(document, {childList: true, subtree: true});"""
    )
    await session.goto("/?site=alpha")
    toggle = page.locator("#theme-toggle")
    assert await toggle.inner_text() == "Theme: auto"
    assert await page.evaluate("() => [window.themeAtBody, document.documentElement.dataset.theme]") == ["light"] * 2
    light_background = await page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    await toggle.click()
    assert await toggle.inner_text() == "Theme: light"
    await toggle.click()
    assert await toggle.inner_text() == "Theme: dark"
    assert await page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    assert await page.evaluate("() => getComputedStyle(document.body).backgroundColor") != light_background
    assert await page.evaluate("() => localStorage.getItem('theme')") == "dark"

    await page.reload()
    await page.wait_for_selector("main h1")
    assert await page.evaluate("() => window.themeAtBody") == "dark"  # no light flash first
    assert await toggle.inner_text() == "Theme: dark"
    await page.goto(session.base + "/no-such-page")  # the HTML 404 keeps the chosen theme too
    assert await page.evaluate("() => window.themeAtBody") == "dark"
    assert await page.evaluate("() => getComputedStyle(document.body).backgroundColor") != light_background
    await session.goto("/")
    await toggle.click()
    assert await toggle.inner_text() == "Theme: auto"
    assert await page.evaluate("() => [localStorage.getItem('theme'), document.documentElement.dataset.theme]") == [
        None,
        "light",
    ]


async def test_slash_focuses_search_and_question_mark_lists_the_shortcuts(open_page: SessionFactory) -> None:
    session = await open_page()
    page = session.page
    await session.goto("/?site=alpha")
    await page.locator(".model-card").first.wait_for()
    await page.keyboard.press("/")
    assert await page.evaluate("() => document.activeElement.id") == "model-search"
    await page.keyboard.type("ar")  # the slash itself was not typed into the box
    await page.wait_for_function("() => document.querySelectorAll('.model-card').length === 1")
    assert await page.get_by_role("searchbox").input_value() == "ar"
    await page.keyboard.press("?")  # typed into the search box: no list
    assert await page.locator("dialog#shortcuts").is_hidden()
    await page.locator("main h1").focus()
    await page.keyboard.press("?")
    shortcuts = page.get_by_role("dialog", name="Keyboard shortcuts")
    await shortcuts.wait_for()
    assert "this site's models, or the whole library" in await shortcuts.inner_text()
    assert await serious_violations(page) == []
    await page.keyboard.press("Escape")
    await shortcuts.wait_for(state="hidden")
    await session.goto("/")  # a view without a search of its own: the library's search
    await page.locator(".site-card, main a").first.wait_for()
    await page.keyboard.press("/")
    assert await page.evaluate("() => document.activeElement.id") == "header-search"


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_not_found_states_are_accessible_and_fit_a_phone(open_page: SessionFactory, scheme: str) -> None:
    session = await open_page(width=390, height=844, is_mobile=True, color_scheme=scheme)
    page = session.page
    problems: dict[str, list[str]] = {}
    for path in ("/?site=nope", "/?site=alpha&model=nobody", "/no-such-page"):
        await session.goto(path)
        await page.wait_for_load_state("networkidle")
        found = await serious_violations(page)
        if found:
            problems[path] = found
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, (path, width)  # no horizontal scroll on a phone
    assert problems == {}

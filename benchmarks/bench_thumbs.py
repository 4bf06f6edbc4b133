"""Thumbnails and the browser app: cold and warm thumbnail throughput, time to first thumbnail.

Measured against peers in the same run, server pinned to one core, client to the other:
- cold: a grid of 200 photos (1600 px) thumbnailed at w=320 through `/thumb` (8 requests in
  flight) vs Pillow doing the same work in one plain process on the same core, with no HTTP
  (the ceiling of the work itself on one core);
- warm: cached thumbnails under wrk vs a bare `web.FileResponse` server sending the same file;
- the page: time from navigation to the first cover thumbnail drawn in headless Chromium on a
  10,000-model site vs a 10-model site (paging keeps it flat; ≤ 1.5× is the goal).

Run: `python -m benchmarks.bench_thumbs`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from .load import HttpClient, run_wrk
from .report import Ratio, environment_note, print_table
from .servers import start_catalog_server, start_file_peer
from .settings import DATA_DIR, PYTHON, REPO_ROOT, SERVER_CPU, pin_to_client_core

GRID = 200
WIDTH = 320
IN_FLIGHT = 8
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def photo_grid() -> Path:
    """200 distinct 1600x1200 JPEG photos (smooth gradients and noise) in one model folder."""
    root = DATA_DIR / "thumbs-grid"
    folder = root / "photos" / "grid"
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == GRID:
        return root
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating {GRID} photos under {folder} …", file=sys.stderr, flush=True)
    base = Image.effect_mandelbrot((1600, 1200), (-2.2, -1.2, 1.0, 1.2), 60).convert("RGB")
    noise = Image.effect_noise((1600, 1200), 40).convert("RGB")
    for index in range(GRID):
        tint = Image.new("RGB", (1600, 1200), ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256))
        image = Image.blend(Image.blend(base, tint, 0.45), noise, 0.15)
        image.save(folder / f"photo{index:03d}.jpg", "JPEG", quality=88)
    return root


def sites_of(count: int) -> Path:
    """A site with `count` models of one small photo each (the same bytes, distinct paths)."""
    root = DATA_DIR / f"thumbs-site-{count}"
    site = root / "many"
    if site.is_dir() and sum(1 for _ in site.iterdir()) == count:
        return root
    shutil.rmtree(root, ignore_errors=True)
    print(f"generating a site of {count} models under {site} …", file=sys.stderr, flush=True)
    buffer = io.BytesIO()
    Image.effect_mandelbrot((800, 600), (-2.2, -1.2, 1.0, 1.2), 40).convert("RGB").save(buffer, "JPEG", quality=85)
    data = buffer.getvalue()
    for index in range(count):
        folder = site / f"model{index:05d}"
        folder.mkdir(parents=True)
        (folder / "cover.jpg").write_bytes(data)
    return root


def pillow_alone(folder: Path) -> float:
    """Images/s of the same thumbnail work in one process on the server's core, no HTTP, no pool."""
    argv = ["taskset", "-c", SERVER_CPU, PYTHON, "-m", "benchmarks.bench_thumbs", "pillow-peer", str(folder)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    return float(done.stdout.strip().splitlines()[-1])


def _pillow_peer(folder: Path) -> None:
    from server.cache.thumbnails import render_thumbnail

    sources = sorted(folder.glob("*.jpg"))
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        for index, source in enumerate(sources):
            render_thumbnail(str(source), f"{scratch}/{index}.jpg", WIDTH, False, None)
        print(len(sources) / (time.perf_counter() - started))


def cold_grid(base_url: str, paths: list[str]) -> float:
    """Images/s for a grid of never-seen thumbnails, IN_FLIGHT requests at a time."""

    def fetch(path: str) -> int:
        with HttpClient(base_url) as client:
            return len(client.get(path).body)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        sizes = list(pool.map(fetch, paths))
    elapsed = time.perf_counter() - started
    assert all(size > 0 for size in sizes)
    return len(paths) / elapsed


async def first_thumbnail_ms(base_urls: list[str], site: str, repeats: int = 7) -> list[float]:
    """Median ms from navigation start to the first cover thumbnail decoded, in Chromium, per server.

    The servers are visited in turn (A, B, A, B, …) so that a busy moment of the machine
    weighs on both alike; each visit is a fresh browser context (no cache); the first visit
    of each (which walks the site and makes the thumbnails) is left out of the median.
    """
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium is not installed")
    times: list[list[float]] = [[] for _ in base_urls]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        for _ in range(repeats + 1):
            for index, base_url in enumerate(base_urls):
                context = await browser.new_context(viewport={"width": 1280, "height": 800})
                page = await context.new_page()
                await page.goto(f"{base_url}/?site={site}", wait_until="commit")
                await page.wait_for_function(
                    "() => { const img = document.querySelector('.model-card img');"
                    " return img && img.complete && img.naturalWidth > 0; }",
                    polling="raf",
                    timeout=60_000,
                )
                times[index].append(await page.evaluate("() => performance.now()"))
                await context.close()
        await browser.close()
    return [statistics.median(series[1:]) for series in times]


def main() -> int:
    pin_to_client_core()
    grid = photo_grid()
    sources = sorted((grid / "photos" / "grid").glob("*.jpg"))
    paths = [f"/thumb/photos/grid/{source.name}?w={WIDTH}" for source in sources]
    rows: list[Ratio] = []
    notes = [environment_note(), f"{GRID} JPEG photos of 1600x1200 thumbnailed at w={WIDTH}"]

    peer_rate = pillow_alone(grid / "photos" / "grid")
    with start_catalog_server(grid) as ours:
        cold = cold_grid(ours.url, paths)
        rows.append(Ratio("cold thumbnails, images/s", cold, peer_rate, "Pillow alone, same core", "img/s", 0.7))
        with HttpClient(ours.url) as client:
            sample = client.get(paths[0]).body
        warm = run_wrk(ours.make_url(paths[0]))
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "thumb.jpg").write_bytes(sample)
            with start_file_peer(Path(folder)) as peer:
                peer_warm = run_wrk(peer.make_url("/thumb.jpg"))
        ours_rate, peer_rate_warm = warm.requests_per_s, peer_warm.requests_per_s
        rows.append(Ratio("warm thumbnail, requests/s", ours_rate, peer_rate_warm, "FileResponse", "req/s", 0.6))
        notes.append(f"warm: ours {warm.summary()}; peer {peer_warm.summary()}")

    small, large = sites_of(10), sites_of(10_000)
    if shutil.which("chromium"):
        with start_catalog_server(small) as few, start_catalog_server(large) as many:
            few_ms, many_ms = asyncio.run(first_thumbnail_ms([few.url, many.url], "many"))
        rows.append(
            Ratio("first thumbnail on screen, 10,000 models", many_ms / 1000, few_ms / 1000,
                  "same page, 10 models", "s", 1.5, higher_is_better=False)
        )  # fmt: skip
        notes.append("first thumbnail: median of 7 fresh browser contexts per site, visited in turn")
    else:
        notes.append("chromium is not installed: the page measure was skipped")
    print_table("thumbnails and the browser app", rows, notes)
    return 0 if all(row.met for row in rows) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["pillow-peer"]:
        _pillow_peer(Path(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())

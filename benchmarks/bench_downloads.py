"""Downloads benchmark: archive throughput against plain file serving, and memory while streaming.

    python -m benchmarks.bench_downloads [--repeats 3] [--skip-many] [--skip-pdf]

Measures, with our server and the peers pinned to one core and curl to the other:
- a 2 GiB ZIP of one model (4 files × 512 MiB): the first download (MISS, streamed while the
  cache copy is written) and a repeat (HIT, sendfile from the cache), each divided by the
  faster of nginx and a bare aiohttp `FileResponse` serving a file of the same size;
- server RSS growth while streaming that archive, and during 50 concurrent downloads of 50
  different archives (50 models of 64 MiB);
- a PDF of 1,000 images: build throughput (archive MB per second of the whole download) and
  RSS growth.
Data is made once under DATA_DIR (outside the repo; see `benchmarks.settings`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .data import ensure_library, random_file, warm_page_cache
from .load import HttpClient, curl_download
from .processes import RssSampler
from .report import Ratio, environment_note, print_table
from .servers import start_catalog_server, start_file_peer, start_nginx
from .settings import CLIENT_CPU, DATA_DIR, BenchmarkError, pin_to_client_core

BIG_ARGS = ("--sites", "1", "--collections", "1", "--files", "0", "--big-files", "4", "--big-mb", "512")
BIG_QUERY = "/api/download?site=gallery-one&model=big-collection"
MANY_MODELS = 50
MANY_MB = 64
PDF_PAGES = 1000
MIB = 1024 * 1024


def wait_for_cache(client: HttpClient, entries: int, timeout_s: float = 120.0) -> None:
    """Until the download cache holds `entries` archives (the cache copy can end after the response)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = client.get("/api/cache_stats")
        if json.loads(stats.body)["download_cache"]["entries"] >= entries:
            return
        time.sleep(0.1)
    raise BenchmarkError("the download cache did not fill in time")


def clear_cache(client: HttpClient) -> None:
    reply = client.request("POST", "/api/clear_cache")
    if reply.status != 200:
        raise BenchmarkError(f"clear_cache answered {reply.status}")
    os.sync()  # the deleted archive's dirty pages are not the next run's cost


def archive_size(client: HttpClient, path: str) -> int:
    reply = client.request("HEAD", path)
    if reply.status != 200:
        raise BenchmarkError(f"HEAD {path} answered {reply.status}")
    return int(reply.headers["content-length"])


def bench_big(repeats: int) -> tuple[list[Ratio], list[str]]:
    library = ensure_library("downloads-big", *BIG_ARGS)
    for path in sorted((library / "gallery-one" / "big-collection").iterdir()):
        warm_page_cache(path)
    notes: list[str] = []
    with start_catalog_server(library, "--download-max-builds", "8") as ours, HttpClient(ours.url) as client:
        size = archive_size(client, BIG_QUERY)
        peer_file = random_file(f"downloads-peer/same-size-{size}.bin", size)
        warm_page_cache(peer_file)
        misses: list[float] = []
        hits: list[float] = []
        peers: list[float] = []  # per repeat, the faster of the two peers
        rss_growth_kib = 0
        with start_file_peer(peer_file.parent) as aiohttp_peer, start_nginx(peer_file.parent) as nginx:
            peer_speeds: dict[str, list[float]] = {"aiohttp FileResponse": [], "nginx": []}
            for _ in range(repeats):
                for name, peer in (("aiohttp FileResponse", aiohttp_peer), ("nginx", nginx)):
                    url = peer.make_url("/" + peer_file.name)
                    peer_speeds[name].append(curl_download(url, size, repeats=1).median_bytes_per_s)
                peers.append(max(runs[-1] for runs in peer_speeds.values()))
                clear_cache(client)
                time.sleep(1.0)
                baseline = ours.rss_kib()
                with RssSampler(ours.pid) as sampler:
                    misses.append(curl_download(ours.make_url(BIG_QUERY), size, repeats=1).median_bytes_per_s)
                rss_growth_kib = max(rss_growth_kib, sampler.peak_kib - baseline)
                wait_for_cache(client, 1)
                os.sync()
                hits.append(curl_download(ours.make_url(BIG_QUERY), size, repeats=1).median_bytes_per_s)

        def gbps(values: list[float]) -> str:
            return "[" + ", ".join(f"{v / 1e9:.2f}" for v in values) + "] GB/s"

        notes.append(
            f"2 GiB ZIP ({size:,} bytes), {repeats} repeats of: both peers, MISS, HIT; rows show the best of "
            f"each (other load on a shared machine only slows a run down). MISS {gbps(misses)}, HIT {gbps(hits)}, "
            + ", ".join(f"{name} {gbps(runs)}" for name, runs in peer_speeds.items())
        )
        notes.append(f"server RSS growth while streaming the 2 GiB archive (MISS): {rss_growth_kib / 1024:.1f} MiB")
    peer_name = "faster of nginx and aiohttp FileResponse"
    rows = [
        Ratio("first download (MISS, stream)", max(misses), max(peers), peer_name, "B/s", 0.6),
        Ratio("repeat download (HIT, cache)", max(hits), max(peers), peer_name, "B/s", 0.9),
        Ratio("RSS growth streaming 2 GiB", rss_growth_kib, 64e6 / 1024, "goal 64 MB", "KiB", 1.0, False),
    ]
    return rows, notes


def many_library() -> Path:
    """50 models, each one hard link of the same 64 MiB file (different archives, little disk)."""
    root = DATA_DIR / "downloads-many"
    source = random_file(f"downloads-peer/many-{MANY_MB}.bin", MANY_MB * MIB)
    for index in range(MANY_MODELS):
        target = root / "many" / f"model{index:02d}" / "video.mp4"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
    warm_page_cache(source)
    return root


def bench_many() -> tuple[list[Ratio], list[str]]:
    root = many_library()
    # 64 MiB archives are "large" against a 32 MB threshold: all 50 are streamed (the buffer
    # strategy holds an archive in memory by design, up to threshold × concurrent builds)
    args = ("--download-max-builds", str(MANY_MODELS), "--threshold-mb", "32")
    with start_catalog_server(root, *args) as ours:
        urls = [ours.make_url(f"/api/download?site=many&model=model{i:02d}") for i in range(MANY_MODELS)]
        argv = ["taskset", "-c", CLIENT_CPU, "curl", "-s", "--parallel", "--parallel-max", str(MANY_MODELS)]
        argv += ["-w", "%{http_code} %{size_download}\n"]
        for url in urls:
            argv += ["-o", "/dev/null", url]
        baseline = ours.rss_kib()
        started = time.perf_counter()
        with RssSampler(ours.pid) as sampler:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        results = [line.split() for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or len(results) != MANY_MODELS or any(r[0] != "200" for r in results):
            raise BenchmarkError(f"50 concurrent downloads failed: {done.returncode} {done.stdout[-500:]}")
        total = sum(int(r[1]) for r in results)
        growth_kib = sampler.peak_kib - baseline
    notes = [
        f"{MANY_MODELS} concurrent downloads of different {MANY_MB} MiB archives: {total / elapsed / 1e9:.2f} GB/s "
        f"in total, server RSS growth {growth_kib / 1024:.1f} MiB"
    ]
    row = Ratio("RSS growth, 50 concurrent archives", growth_kib, 256e6 / 1024, "goal 256 MB", "KiB", 1.0, False)
    return [row], notes


def pdf_library() -> Path:
    """One model of 1,000 images (hard links into a generated library's images)."""
    pool = ensure_library("downloads-pool", "--sites", "1", "--collections", "60", "--files", "40", "--video-rate", "0")
    images = sorted(
        p for p in pool.rglob("*") if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
    )
    if len(images) < PDF_PAGES:
        raise BenchmarkError(f"the pool has only {len(images)} images")
    root = DATA_DIR / "downloads-pdf"
    folder = root / "books" / "book"
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images[:PDF_PAGES]):
        target = folder / f"page{index:04d}{image.suffix.lower()}"
        if not target.exists():
            os.link(image, target)
    for path in folder.iterdir():
        warm_page_cache(path)
    return root


def bench_pdf() -> tuple[list[Ratio], list[str]]:
    root = pdf_library()
    folder = root / "books" / "book"
    kinds: dict[str, int] = {}
    for path in folder.iterdir():
        kinds[path.suffix] = kinds.get(path.suffix, 0) + 1
    source_bytes = sum(p.stat().st_size for p in folder.iterdir())
    with start_catalog_server(root) as ours:
        url = ours.make_url("/api/download?site=books&model=book&format=pdf")
        baseline = ours.rss_kib()
        started = time.perf_counter()
        with RssSampler(ours.pid) as sampler:
            argv = ["taskset", "-c", CLIENT_CPU, "curl", "-s", "-o", "/dev/null", "-D", "-"]
            done = subprocess.run([*argv, "-w", "%{size_download}", url], capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        growth_kib = sampler.peak_kib - baseline
        size = int(done.stdout.rsplit("\n", 1)[-1])
        strategy = next((line for line in done.stdout.splitlines() if line.lower().startswith("x-download")), "?")
    notes = [
        f"PDF of {PDF_PAGES} images ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}; "
        f"{source_bytes / 1e6:.0f} MB of images): {size / 1e6:.0f} MB in {elapsed:.2f} s = "
        f"{size / 1e6 / elapsed:.0f} MB/s ({strategy.strip()}), server RSS growth {growth_kib / 1024:.1f} MiB"
    ]
    return [Ratio("RSS growth, PDF of 1,000 images", growth_kib, 100e6 / 1024, "goal 100 MB", "KiB", 1.0, False)], notes


def main(argv: Sequence[str] = ()) -> int:
    """0 when every goal is met, 1 otherwise (`python -m benchmarks` calls it without arguments)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_downloads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-many", action="store_true")
    parser.add_argument("--skip-pdf", action="store_true")
    args = parser.parse_args(list(argv))
    pin_to_client_core()
    rows, notes = bench_big(args.repeats)
    if not args.skip_many:
        more_rows, more_notes = bench_many()
        rows += more_rows
        notes += more_notes
    if not args.skip_pdf:
        more_rows, more_notes = bench_pdf()
        rows += more_rows
        notes += more_notes
    print_table("downloads", rows, [*notes, environment_note()])
    return 0 if all(row.met for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

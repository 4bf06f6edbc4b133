"""Downloads benchmark: archive throughput against plain file serving, and memory while streaming.

    python -m benchmarks.bench_downloads [--rounds 5] [--quick] [--skip-many] [--skip-pdf]

Measured on two inputs, with our server and the peers pinned to one core and the clients to the
other, in interleaved rounds (each row's ratio the median [range] of the rounds' ratios, never
the best run):
- big: a 2 GiB ZIP of one model (4 files × 512 MiB), by curl;
- small: the small ordinary library's busiest model's site as one ZIP (~46 MB), by curl; and that
  model's ZIP (~3 MB), by wrk over keep-alive (requests/s and per server CPU-second).
For a curl input each round empties the download cache, downloads the archive once (MISS: built
while sent, the cache copy written meanwhile), then hard-links the cache's archive into a folder
nginx and a bare aiohttp `FileResponse` serve, and downloads it from ours (HIT, sendfile from the
cache) and from both peers, in alternating order: the peers serve the very bytes and inode of our
cache. The model ZIP is built and shared once, then wrk measures the three in interleaved rounds.
Rows: MISS and HIT ÷ the faster peer of the round (goals ≥ 0.6 and ≥ 0.95); server RSS growth while
streaming the 2 GiB archive, during 50 concurrent downloads of 50 different archives (50 models
of 64 MiB), and while building a PDF of 1,000 images.
Data is made once under DATA_DIR (outside the repo; see `benchmarks.settings`; `BENCH_SCALE=0.05`
shrinks the big inputs for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .data import (
    busiest_model,
    catalog_library,
    ensure_library,
    ordinary_library,
    random_file,
    scaled,
    scaled_name,
    warm_page_cache,
)
from .load import HttpClient, compare_wrk, curl_download, interleaved
from .processes import RssSampler, ServerProcess
from .report import (
    Ratio,
    add_round_options,
    best_per_round,
    chosen_rounds,
    environment_note,
    fastest_runs,
    print_table,
    rounds_ratio,
    spread,
    throughput_rows,
)
from .servers import start_catalog_server, start_file_peer, start_nginx
from .settings import CLIENT_CPU, DATA_DIR, BenchmarkError, pin_to_client_core

BIG_MB = 512  # each of the big model's 4 files
BIG_QUERY = "/api/download?site=gallery-one&model=big-collection"
HIT_GOAL = 0.95
MISS_GOAL = 0.6
MANY_MODELS = 50
MANY_MB = 64
PDF_PAGES = 1000
MIB = 1024 * 1024
MIN_BYTES_PER_FIGURE = 256 * MIB  # a small archive's HIT and peer figures: the median of this many bytes' downloads
PEERS = ("nginx", "aiohttp FileResponse")
Measured = tuple[list[Ratio], list[str]]  # table rows and notes


@dataclass(frozen=True)
class Archive:
    """One archive to download: its label, our query, and its name in the peers' folder."""

    label: str
    query: str
    peer_file: str


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


def head(client: HttpClient, path: str) -> tuple[int, str]:
    """(Content-Length, X-Cache) of a download, without building it."""
    reply = client.request("HEAD", path)
    if reply.status != 200:
        raise BenchmarkError(f"HEAD {path} answered {reply.status}")
    return int(reply.headers["content-length"]), reply.headers.get("x-cache", "")


def share_cached_archive(client: HttpClient, archive: Archive, cache_dir: Path, peer_dir: Path) -> None:
    """Once our cache holds `archive` (HEAD says HIT), hard-link its file into the peers' folder
    under `archive.peer_file`: the peers then serve the very bytes (and inode) ours sends."""
    wait_for_cache(client, 1)
    size, cache = head(client, archive.query)
    if cache != "HIT":
        raise BenchmarkError(f"{archive.label}: X-Cache {cache!r} after the first download (expected HIT)")
    newest = sorted(
        (path for path in (cache_dir / "downloads").glob("*.zip") if path.stat().st_size == size),
        key=lambda path: path.stat().st_mtime_ns,
    )
    if not newest:
        raise BenchmarkError(f"{archive.label}: no archive of {size} bytes in {cache_dir / 'downloads'}")
    os.sync()
    staged = peer_dir / f"{archive.peer_file}.new"
    staged.unlink(missing_ok=True)
    os.link(newest[-1], staged)
    os.replace(staged, peer_dir / archive.peer_file)


@dataclass
class Contest:
    """Ours (with its cache folder) against the peers serving `peer_dir`, for several archives."""

    ours: ServerProcess
    client: HttpClient
    cache_dir: Path
    peer_dir: Path
    peers: dict[str, ServerProcess]
    rounds: int

    def curl_rounds(self, archive: Archive, min_bytes_per_figure: int, rss_goal_mb: int | None = None) -> Measured:
        """Per round: MISS once, then HIT and both peers (by curl, alternating order), each
        figure at least `min_bytes_per_figure`; a row for the RSS growth while streaming (MISS)
        when there is a goal for it."""
        size, _cache = head(self.client, archive.query)
        repeats = max(1, round(min_bytes_per_figure / size))
        figures: dict[str, list[float]] = {name: [] for name in ("MISS", "ours", *PEERS)}
        rss_growth_kib = 0
        for round_number in range(self.rounds):
            clear_cache(self.client)
            time.sleep(1.0)
            baseline = self.ours.rss_kib()
            with RssSampler(self.ours.pid) as sampler:
                miss = curl_download(self.ours.make_url(archive.query), size, repeats=1)
            figures["MISS"].append(miss.median_bytes_per_s)
            rss_growth_kib = max(rss_growth_kib, sampler.peak_kib - baseline)
            share_cached_archive(self.client, archive, self.cache_dir, self.peer_dir)
            for name in interleaved(["ours", *PEERS], round_number):
                server, path = (
                    (self.ours, archive.query) if name == "ours" else (self.peers[name], f"/{archive.peer_file}")
                )
                figures[name].append(curl_download(server.make_url(path), size, repeats).median_bytes_per_s)
        peer, peer_name = best_per_round({name: figures[name] for name in PEERS})
        rows = [
            rounds_ratio(f"{archive.label}: first download (MISS)", figures["MISS"], peer, peer_name, "B/s", MISS_GOAL),
            rounds_ratio(f"{archive.label}: repeat download (HIT)", figures["ours"], peer, peer_name, "B/s", HIT_GOAL),
        ]
        if rss_goal_mb is not None:
            measure, goal = f"RSS growth streaming {archive.label}", f"goal {rss_goal_mb} MB"
            rows.append(Ratio(measure, rss_growth_kib, rss_goal_mb * 1e6 / 1024, goal, "KiB", 1.0, False))
        notes = [
            f"{archive.label} ({size:,} bytes; HIT and peers {repeats} per figure): "
            + ", ".join(f"{name} {spread(values, 'B/s')}" for name, values in figures.items())
            + f"; RSS growth while streaming (MISS) {rss_growth_kib / 1024:.1f} MiB"
        ]
        return rows, notes

    def wrk_hits(self, archive: Archive) -> Measured:
        """Cache hits of a small archive by wrk (keep-alive), against both peers."""
        clear_cache(self.client)
        size, _cache = head(self.client, archive.query)
        curl_download(self.ours.make_url(archive.query), size, repeats=1)  # the MISS that fills the cache
        share_cached_archive(self.client, archive, self.cache_dir, self.peer_dir)
        targets = {"ours": (self.ours, archive.query)}
        targets.update({name: (self.peers[name], f"/{archive.peer_file}") for name in PEERS})
        runs = compare_wrk(targets, rounds=self.rounds)
        peer_name, peer_runs = fastest_runs({name: runs[name] for name in PEERS})
        rows = throughput_rows(f"{archive.label}: repeat download (HIT)", runs["ours"], peer_runs, peer_name, HIT_GOAL)
        notes = [f"{archive.label} ({size:,} bytes), wrk, {name}: {runs[name].summary()}" for name in runs]
        return rows, notes


def bench_archives(rounds: int) -> Measured:
    """Three inputs: the big ZIP (its own library), a site of the big catalog library (many small
    files), and the small library's site and model ZIPs."""
    big_mb = scaled(BIG_MB)
    big_args = ("--sites", "1", "--collections", "1", "--files", "0", "--big-files", "4", "--big-mb", str(big_mb))
    big_library = ensure_library(scaled_name("downloads-big"), *big_args)
    warm_page_cache(*sorted((big_library / "gallery-one" / "big-collection").iterdir()))
    small_library = ordinary_library()
    site, model, _files = busiest_model(small_library)
    warm_page_cache(*(path for path in (small_library / site).rglob("*") if path.is_file() and not path.is_symlink()))
    site_query = f"/api/download?site={quote(site, safe='')}"
    many_files = catalog_library()  # a site of many small files (~200 MB, ~9,700 files in 250 folders)
    many_site = max((path for path in many_files.iterdir() if path.is_dir()), key=lambda path: path.name)
    warm_page_cache(*(path for path in many_site.rglob("*") if path.is_file() and not path.is_symlink()))
    big_site_query = f"/api/download?site={quote(many_site.name, safe='')}"
    big_site_zip = Archive(f"site ZIP, big library ({many_site.name})", big_site_query, "bigsite.zip")
    big = Archive(f"{4 * big_mb} MiB ZIP", BIG_QUERY, "big.zip")
    site_zip = Archive(f"site ZIP ({site})", site_query, "site.zip")
    model_zip = Archive(f"model ZIP ({site}/{model})", f"{site_query}&model={quote(model, safe='')}", "model.zip")
    rows: list[Ratio] = []
    notes: list[str] = []
    DATA_DIR.mkdir(parents=True, exist_ok=True)  # the cache and the peers' folder: one file system (hard links)
    with tempfile.TemporaryDirectory(prefix="bench-downloads-", dir=DATA_DIR) as work:
        peer_dir = Path(work) / "peer"
        peer_dir.mkdir()
        with start_nginx(peer_dir) as nginx, start_file_peer(peer_dir) as bare:
            peers = {"nginx": nginx, "aiohttp FileResponse": bare}
            plan: list[tuple[Path, list[Callable[[Contest], Measured]]]] = [
                (big_library, [lambda contest: contest.curl_rounds(big, MIN_BYTES_PER_FIGURE, rss_goal_mb=64)]),
                (many_files, [lambda contest: contest.curl_rounds(big_site_zip, MIN_BYTES_PER_FIGURE)]),
                (
                    small_library,
                    [
                        lambda contest: contest.curl_rounds(site_zip, MIN_BYTES_PER_FIGURE),
                        lambda contest: contest.wrk_hits(model_zip),
                    ],
                ),
            ]
            for library, measures in plan:
                cache_dir = Path(work) / f"cache-{library.name}"
                args = ("--download-max-builds", "8")
                with start_catalog_server(library, *args, cache_dir=cache_dir) as ours, HttpClient(ours.url) as client:
                    contest = Contest(ours, client, cache_dir, peer_dir, peers, rounds)
                    for measure in measures:
                        more_rows, more_notes = measure(contest)
                        rows += more_rows
                        notes += more_notes
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
    add_round_options(parser)
    parser.add_argument("--skip-many", action="store_true")
    parser.add_argument("--skip-pdf", action="store_true")
    args = parser.parse_args(list(argv))
    rounds = chosen_rounds(args)
    pin_to_client_core()
    rows, notes = bench_archives(rounds)
    if not args.skip_many:
        more_rows, more_notes = bench_many()
        rows += more_rows
        notes += more_notes
    if not args.skip_pdf:
        more_rows, more_notes = bench_pdf()
        rows += more_rows
        notes += more_notes
    print_table(f"downloads ({rounds} rounds)", rows, [*notes, environment_note()])
    return 0 if all(row.met for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

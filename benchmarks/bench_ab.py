"""Before/after in one run: this checkout's server against another checkout's, interleaved.

For a change that must not cost speed (a re-housing, a refactor), the fairest figure is the two
servers side by side on the same machine at the same moment: rounds alternate between them
(A B B A A B …), so outside load falls on both alike, and each figure is the median of the
rounds with its range (min–max), never the best. Measured on two libraries — the catalog
benchmark's big one and a small ordinary one — with the server pinned to the server core and
the load generator to the client core:

- cached `GET /api/models?site=…&limit=250`, identity and gzip (wrk): req/s and req per server CPU-s;
- a cold `/api/models` of every site after `POST /api/clear_cache` (ms);
- a 256 MiB `/media` file by curl (GB/s).

Run: `BENCH_BEFORE=/path/to/other/worktree python -m benchmarks.bench_ab [--rounds 5]`
(e.g. `git worktree add /tmp/before <commit>`). Exit 0; it reports, it sets no goal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from .data import ensure_library, random_file, warm_page_cache
from .load import HttpClient, curl_download, interleaved, run_wrk
from .processes import ServerProcess
from .servers import start_catalog_server
from .settings import REPO_ROOT, BenchmarkError, pin_to_client_core

LIBRARIES = {
    "big": ("catalog-lib", ("--sites", "4", "--collections", "250", "--files", "40", "--max-dim", "320")),
    "small": ("ordinary-lib", ("--sites", "3", "--collections", "60", "--files", "30", "--extras", "--max-dim", "320")),
}
MEDIA_SIZE = 256 * 1024 * 1024
GZIP = {"Accept-Encoding": "gzip"}


@dataclass
class Series:
    """One figure of one server over the rounds."""

    unit: str
    values: list[float] = field(default_factory=list)

    def text(self) -> str:
        if not self.values:
            return "-"
        low, mid, high = min(self.values), statistics.median(self.values), max(self.values)
        return f"{_fmt(mid, self.unit)} [{_fmt(low, self.unit)}–{_fmt(high, self.unit)}]"


def _fmt(value: float, unit: str) -> str:
    if unit == "GB/s":
        return f"{value / 1e9:.2f}"
    if unit == "ms":
        return f"{value * 1000:.1f}"
    return f"{value:,.0f}"


def _sites(client: HttpClient) -> list[str]:
    import json

    reply = client.get("/api/sites")
    return [site["name"] for site in json.loads(reply.body)["sites"]]


def _cold_listing_s(client: HttpClient, sites: Sequence[str]) -> float:
    if client.request("POST", "/api/clear_cache").status != 200:
        raise BenchmarkError("clear_cache failed")
    started = time.perf_counter()
    for site in sites:
        reply = client.get(f"/api/models?site={quote(site)}&limit=250")
        if reply.status != 200:
            raise BenchmarkError(f"/api/models answered {reply.status}")
    return time.perf_counter() - started


def measure_round(
    server: ServerProcess, media_server: ServerProcess, figures: dict[str, Series], media_path: str, duration_s: int
) -> None:
    with HttpClient(server.url) as client:
        sites = _sites(client)
        figures["cold listing"].values.append(_cold_listing_s(client, sites))
        listing = server.make_url(f"/api/models?site={quote(sites[0])}&limit=250")
        client.get(f"/api/models?site={quote(sites[0])}&limit=250")  # cached from here on
    plain = run_wrk(listing, duration_s=duration_s, server=server, warmup_s=1)
    gzip = run_wrk(listing, duration_s=duration_s, headers=GZIP, server=server, warmup_s=1)
    figures["listing req/s"].values.append(plain.requests_per_s)
    figures["listing req/CPU-s"].values.append(plain.requests_per_cpu_s or 0.0)
    figures["gzip listing req/s"].values.append(gzip.requests_per_s)
    figures["gzip listing req/CPU-s"].values.append(gzip.requests_per_cpu_s or 0.0)
    download = curl_download(media_server.make_url(media_path), MEDIA_SIZE, repeats=3)
    figures["256 MiB /media"].values.append(download.median_bytes_per_s)


def new_figures() -> dict[str, Series]:
    return {
        "listing req/s": Series("req/s"),
        "listing req/CPU-s": Series("req/CPU-s"),
        "gzip listing req/s": Series("req/s"),
        "gzip listing req/CPU-s": Series("req/CPU-s"),
        "cold listing": Series("ms"),
        "256 MiB /media": Series("GB/s"),
    }


def media_library() -> Path:
    """A library of one 256 MiB video (random bytes), beside the generated ones."""
    source = random_file("ab-media/big-256mib.mp4", MEDIA_SIZE)
    media = source.parent / "library" / "bench" / "big" / source.name
    if not media.is_file():
        media.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, media)
    warm_page_cache(media)
    return source.parent / "library"


def compare(library: Path, before: Path, rounds: int, duration_s: int) -> None:
    media_root = media_library()
    media_path = "/media/bench/big/big-256mib.mp4"
    checkouts = {"before": before, "after": REPO_ROOT}
    servers = {name: start_catalog_server(library, checkout=path) for name, path in checkouts.items()}
    media_servers = {name: start_catalog_server(media_root, checkout=path) for name, path in checkouts.items()}
    figures = {name: new_figures() for name in servers}
    try:
        for number in range(rounds):
            for name in interleaved(["before", "after"], number):
                measure_round(servers[name], media_servers[name], figures[name], media_path, duration_s)
            print(f"  round {number + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        for server in (*servers.values(), *media_servers.values()):
            server.stop()
    print(f"{'measure':<28}  {'before: median [range]':<30}  {'after: median [range]':<30}  after/before")
    for measure in figures["before"]:
        old, new = figures["before"][measure], figures["after"][measure]
        ratio = statistics.median(new.values) / statistics.median(old.values)
        print(f"{measure + ' (' + old.unit + ')':<28}  {old.text():<30}  {new.text():<30}  {ratio:.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3, help="seconds of wrk per figure and round")
    parser.add_argument("--library", choices=[*LIBRARIES, "both"], default="both")
    arguments = parser.parse_args([] if argv is None else argv)  # `python -m benchmarks` passes none
    before = os.environ.get("BENCH_BEFORE")
    if not before:
        print(
            "bench_ab: nothing to compare; set BENCH_BEFORE to another checkout (git worktree add /tmp/before <commit>)"
        )
        return 0
    pin_to_client_core()
    for name, (folder, args) in LIBRARIES.items():
        if arguments.library not in (name, "both"):
            continue
        library = ensure_library(folder, *args)
        print(f"\n== {name} library ({folder}): before {before}, after {REPO_ROOT}, {arguments.rounds} rounds ==")
        compare(library, Path(before).resolve(), arguments.rounds, arguments.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Scale-out figures: two workers against one, and the Redis index against the embedded one.

- Cached `GET /api/models?site=…&limit=250` requests/s with `--workers 2` and with
  `--workers 1`, both with a Redis URL (as several workers require). Here neither the server
  nor wrk is confined to one core: both may use both cores, so each setting gets the same
  machine and shares it the same way with the load generator. Printed: both figures and the
  ratio (what a second worker buys on this 2-core machine).
- A cache-hit download (`/api/download`, a small ZIP served from the disk cache): median
  latency over many keep-alive requests with `--redis-url` against the embedded SQLite
  index; the ratio is the cost of asking Redis instead of a local file.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from urllib.parse import quote

from .data import ensure_library
from .load import HttpClient, run_wrk
from .report import Ratio, environment_note, print_table
from .servers import start_catalog_server
from .settings import pin_to_client_core

LIBRARY_ARGS = ("--sites", "4", "--collections", "250", "--files", "40", "--max-dim", "320")
REDIS_URL = "redis://127.0.0.1:6379/14"
BOTH_CORES = "0,1"
HIT_REQUESTS = 300


def workers_rows(library: Path) -> tuple[list[Ratio], list[str]]:
    site = sorted(p.name for p in library.iterdir() if p.is_dir() and not p.name.startswith("."))[0]
    path = f"/api/models?site={site}&limit=250"
    results = {}
    for workers in (1, 2):
        with start_catalog_server(
            library, "--workers", str(workers), "--redis-url", REDIS_URL, cpu=BOTH_CORES
        ) as server:
            # every worker keeps its own memory cache: the warm-up fills them all
            results[workers] = run_wrk(server.make_url(path), threads=2, cpu=BOTH_CORES, warmup_s=3)
    rows = [
        Ratio(
            "cached /api/models, 2 workers vs 1",
            results[2].requests_per_s,
            results[1].requests_per_s,
            "1 worker",
            "req/s",
            1.0,
        ),
    ]
    notes = [f"workers rows: server and wrk (2 threads) both on cores {BOTH_CORES}"]
    notes += [f"{n} worker(s): {results[n].summary()}" for n in (1, 2)]
    return rows, notes


def _median_hit_seconds(server_url: str, path: str) -> float:
    with HttpClient(server_url) as client:
        first = client.get(path)  # builds and caches the archive
        for _ in range(50):
            reply = client.get(path)
            if reply.headers.get("x-cache") == "HIT":
                break
        else:
            raise RuntimeError(f"{path} never became a cache hit (last: {first.headers.get('x-cache')})")
        seconds = []
        for _ in range(HIT_REQUESTS):
            reply = client.get(path)
            assert reply.headers.get("x-cache") == "HIT"
            seconds.append(reply.seconds)
    return statistics.median(seconds)


def index_rows(library: Path) -> tuple[list[Ratio], list[str]]:
    site = sorted(p.name for p in library.iterdir() if p.is_dir() and not p.name.startswith("."))[0]
    model = sorted(p.name for p in (library / site).iterdir() if p.is_dir() and not p.name.startswith("."))[0]
    path = f"/api/download?site={quote(site)}&model={quote(model)}&format=zip"
    with start_catalog_server(library) as local:
        local_s = _median_hit_seconds(local.url, path)
    with start_catalog_server(library, "--redis-url", REDIS_URL) as shared:
        redis_s = _median_hit_seconds(shared.url, path)
    rows = [
        Ratio(
            "cache-hit download latency, Redis vs local index",
            redis_s,
            local_s,
            "local",
            "s",
            1.5,
            higher_is_better=False,
        )
    ]
    notes = [f"median of {HIT_REQUESTS} keep-alive hits of {path}: added latency {(redis_s - local_s) * 1000:.3f} ms"]
    return rows, notes


def main() -> int:
    pin_to_client_core()
    library = ensure_library("catalog-lib", *LIBRARY_ARGS)
    rows, notes = workers_rows(library)
    more_rows, more_notes = index_rows(library)
    print_table("cluster", [*rows, *more_rows], [environment_note(), *notes, *more_notes])
    return 0 if all(row.met for row in [*rows, *more_rows]) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What our layer costs per request, without the network: the app's handling of a cached
`/api/models` (routing, the one middleware with its access check and request figures, query
parsing, the cache lookup with its freshness check, the response with its validators) against a
bare aiohttp app answering the same bytes, both driven in this process by mocked requests.

wrk figures on a shared VM move by ±30 % between runs; CPU microseconds per request of the
layer we own move far less, so a change to the hot path can be judged here first (then on the
wire with `bench_catalog`). Prints µs/request: median [range] of `--rounds` rounds of 5,000
requests each, identity and gzip, on the small ordinary library.

Run: python -m benchmarks.bench_hotpath [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from server import keys
from server.app import create_app
from server.config import Config

from .bench_ab import LIBRARIES
from .data import ensure_library

REQUESTS_PER_ROUND = 5000


def _request(app: web.Application, url: str, gzip: bool) -> web.Request:
    headers = CIMultiDict({"Host": "127.0.0.1", **({"Accept-Encoding": "gzip"} if gzip else {})})
    return make_mocked_request("GET", url, headers=headers, app=app)


async def _per_request_us(app: web.Application, url: str, gzip: bool, rounds: int) -> list[float]:
    figures = []
    for _ in range(rounds):
        requests = [_request(app, url, gzip) for _ in range(REQUESTS_PER_ROUND)]
        started = time.process_time()
        for request in requests:
            await app._handle(request)
        figures.append((time.process_time() - started) / REQUESTS_PER_ROUND * 1e6)
    return figures


async def measure(library: Path, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hotpath-") as cache:
        ours = create_app(Config(models_dir=library, cache_dir=Path(cache)))
        ours.freeze()
        site = ours[keys.CATALOG].library.site_names()[0]
        url = f"/api/models?site={quote(site)}&limit=250"
        first = await ours._handle(_request(ours, url, False))  # fills the cache
        body = first.body if isinstance(first, web.Response) else None
        if first.status != 200 or not isinstance(body, bytes):
            raise RuntimeError(f"{url} answered {first.status}")

        async def same_bytes(_request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        bare = web.Application()
        bare.router.add_get("/api/models", same_bytes)
        bare.freeze()
        print(f"{'handling of':<22}  µs/request: median [range] of {rounds} rounds × {REQUESTS_PER_ROUND:,}")
        for name, app, gzip in (("ours", ours, False), ("ours, gzip", ours, True), ("bare aiohttp", bare, False)):
            figures = await _per_request_us(app, url, gzip, rounds)
            print(f"{name:<22}  {statistics.median(figures):6.2f} [{min(figures):.2f}–{max(figures):.2f}]")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="µs per request of our layer against a bare aiohttp app")
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args([] if argv is None else argv)  # `python -m benchmarks` passes none
    folder, args = LIBRARIES["small"]
    asyncio.run(measure(ensure_library(folder, *args), arguments.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

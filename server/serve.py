"""Running the app: one process, or N worker processes sharing one port (SO_REUSEPORT).

Workers are started with the `spawn` context so each builds its own app, event loop, pools
and Redis connection from the same Config; the kernel spreads new connections over them.
Several workers need Redis (config enforces it) so that they act as one service.

The server is aiohttp's, run as `web.run_app` runs it (sites, then a graceful shutdown on
SIGINT/SIGTERM with the app's cleanup first), with one difference: its connections are
`JsonErrorRequestHandler`s, so what the HTTP parser refuses is answered in the JSON error
shape too. aiohttp 3.x has no option to choose that class, hence `_JsonErrorServer`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import signal

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from server.app import create_app
from server.config import Config
from server.web.middleware import JsonErrorRequestHandler
from server.web.params import MAX_PARAM_LENGTH, MAX_PARAMS

log = logging.getLogger("archive_catalog")

# The cyclic garbage collector runs after this many net new container objects (CPython: 700).
# A scan allocates tens of thousands of small, long-lived, acyclic objects (walk entries, cache
# entries, groups), and at 700 each scan paid ~20 ms of collections, most of them full passes
# over the whole heap (measured in-process on a 5,500-file library: 22 ms of GC and 106 ms per
# first scan, against none and 90 ms at 50,000). Reference counting still frees almost
# everything at once; cyclic garbage waits a little longer.
GC_THRESHOLD = 50_000


def _tune_gc() -> None:
    """After start-up: what exists now lives as long as the process (the app, its routes and
    caches) and is left out of every later collection (`gc.freeze`); collections are rarer."""
    gc.freeze()
    _first, second, third = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, second, third)


# The longest request line the contract allows: every parameter at its longest, each character
# percent-encoded UTF-8 (up to 12 bytes), with its name, after a path. Longer lines get a JSON 414.
MAX_REQUEST_LINE = MAX_PARAMS * (MAX_PARAM_LENGTH * 12 + 64) + 8192
MAX_HEADER_FIELD = 16384  # one header line (a long cookie or token fits); longer gets a JSON 431
SHUTDOWN_TIMEOUT_S = 5.0


class _JsonErrorServer(web.Server):
    """aiohttp's low-level server, making a `JsonErrorRequestHandler` for each connection."""

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class CatalogRunner(web.AppRunner):
    """An `AppRunner` whose server answers parser errors in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # the same server, only its connection factory differs
        return server


async def _serve(app: web.Application, host: str, port: int, reuse_port: bool) -> None:
    runner = CatalogRunner(
        app,
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        access_log=None,
        max_line_size=MAX_REQUEST_LINE,
        max_field_size=MAX_HEADER_FIELD,
    )
    await runner.setup()
    _tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port, backlog=1024).start()
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()  # on_shutdown, in-flight requests (up to the timeout), cleanup contexts


def serve(config: Config, reuse_port: bool = False) -> None:
    asyncio.run(_serve(create_app(config), config.host, config.port, reuse_port))


def _worker(config: Config) -> None:  # runs in a spawned process
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [worker %(process)d] %(message)s")
    serve(config, reuse_port=True)


def run_workers(config: Config) -> int:
    """N processes on one port (SO_REUSEPORT: the kernel spreads connections), sharing Redis."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(config,), name=f"worker-{n}") for n in range(config.workers)]
    for process in workers:
        process.start()
    log.info("started %d workers on port %d", len(workers), config.port)

    def stop(_signum: int, _frame: object) -> None:
        for process in workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: aiohttp shuts down gracefully

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process in workers:
        process.join()
    return max((abs(p.exitcode or 0) for p in workers), default=0)

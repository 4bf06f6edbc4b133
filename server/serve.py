"""Running the app: one process, or N worker processes sharing one port (SO_REUSEPORT).

Workers are started with the `spawn` context so each builds its own app, event loop, pools
and Redis connection from the same Config; the kernel spreads new connections over them.
Several workers need Redis (config enforces it) so that they act as one service.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal

from aiohttp import web

from server.app import create_app
from server.config import Config

log = logging.getLogger("archive_catalog")


def serve(config: Config, reuse_port: bool = False) -> None:
    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        reuse_port=reuse_port,
        backlog=1024,
        # request lines long enough for every documented parameter at its maximum length
        max_line_size=65536,
        max_field_size=16384,
        handler_cancellation=True,
        shutdown_timeout=5.0,
        print=None,
        access_log=None,
    )


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

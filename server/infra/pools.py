"""The one process-pool helper: forkserver worker pools that live as long as the app.

Both the thumbnail renderer and the duplicate scan run their CPU work in a `WorkerPool`: an
explicit `forkserver` context, workers that ignore Ctrl-C (the server shuts them down in order)
and exit on their own when the server process dies (SIGKILL leaves no orphans), warmed at start
so the first request does not pay for imports, and replaced when a worker dies. Also the one
way to open a file off the event loop (`open_off_loop`, used by every file responder and the
download cache) without leaking a descriptor when the request is cancelled, and the one safe
open of a file to send (`open_regular`: no final symlink followed, regular files only). Pure: no aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, BinaryIO, TypeVar

from server.errors import NotFound
from server.infra.orphans import exit_with

log = logging.getLogger("archive_catalog")


def usable_cores() -> int:
    """Cores this process may run on (taskset and cgroup affinity respected)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(low: int, high: int) -> int:
    """One worker per usable core, within `low..high`."""
    return max(low, min(high, usable_cores()))


def init_worker(server_pid: int, then: Callable[..., None] | None, then_args: tuple[Any, ...]) -> None:
    """Every pool worker: leave Ctrl-C to the server, end with it, then the pool's own set-up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with(server_pid)
    if then is not None:
        then(*then_args)


def _ready(_: int = 0) -> int:
    return os.getpid()


class WorkerPool:
    """A named forkserver pool: `start()` and `close()` in a cleanup context, `executor` between."""

    def __init__(
        self,
        name: str,
        workers: int,
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        preload: Sequence[str] = (),
        warm: Callable[[int], Any] = _ready,
    ) -> None:
        self.name = name
        self.workers = workers
        self.restarts = 0
        self._initializer = initializer
        self._initargs = initargs
        self._preload = list(preload)
        self._warm = warm
        self._executor: Executor | None = None

    @property
    def running(self) -> bool:
        return self._executor is not None

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            raise RuntimeError(f"the {self.name} worker pool is not running")
        return self._executor

    @executor.setter
    def executor(self, executor: Executor) -> None:
        """Tests put a gated executor in place of the real one."""
        self._executor = executor

    def _new(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        if self._preload:
            context.set_forkserver_preload(self._preload)
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=init_worker,
            initargs=(os.getpid(), self._initializer, self._initargs),
        )

    async def start(self, wait_warm: bool = True) -> asyncio.Future[Any]:
        """A new pool; its workers start (and import) at once, awaited when `wait_warm`."""
        self._executor = self._new()
        loop = asyncio.get_running_loop()
        warming = asyncio.gather(*(loop.run_in_executor(self._executor, self._warm, i) for i in range(self.workers)))
        if wait_warm:
            await warming
        return warming

    def replace(self, broken: Executor) -> bool:
        """After a worker died: a new pool in place of `broken` (once, however many noticed)."""
        if self._executor is not broken:
            return False
        log.warning("%s: a worker died (killed or crashed); starting a new worker pool", self.name)
        self._executor = self._new()
        self.restarts += 1
        broken.shutdown(wait=False, cancel_futures=True)
        return True

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


Opened = TypeVar("Opened")


async def open_off_loop(opener: Callable[..., Opened], *args: Any) -> Opened:
    """Run a blocking `open` in a thread; if the request is cancelled meanwhile, the file the
    thread still opens is closed when it arrives (no descriptor is left to the GC)."""
    opening = asyncio.get_running_loop().run_in_executor(None, opener, *args)
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_late_result)
        raise


def _close_late_result(opening: asyncio.Future[Any]) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return
    result = opening.result()
    for item in result if isinstance(result, tuple) else (result,):
        if hasattr(item, "close"):
            item.close()


def open_regular(path: str) -> tuple[BinaryIO, os.stat_result]:
    """Open without following a final symlink, so a swap after the path check fails here."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        raise NotFound("No such file.") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotFound("No such file.")
    return os.fdopen(fd, "rb", buffering=0), info

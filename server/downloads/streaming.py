"""The streaming engine: an archive plan sent part by part, its cache copy written beside it.

`pump` sends header bytes through the sink and file regions with sendfile; `CrcRunner`
computes the entries' CRC-32s in a thread of its own, in order, for the data descriptors the
pump and the cache writer wait for; `write_plan` is the cache writer (a niced thread:
header bytes written, file regions copied by the kernel with copy_file_range); `plan_slice` is
the part of a plan a Range request asks for. No aiohttp here:
the handler's `Sink` is the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from server.archives.plans import (
    ArchivePlan,
    ArchiveSourceChanged,
    CrcCache,
    CrcJob,
    Deferred,
    FileSpan,
    Part,
    crc_buffer,
    job_crc,
    part_length,
    read_span,
)

COPY_STEP = 64 * 1024 * 1024  # copy_file_range per call, so a cancelled build stops soon
# The cache copy yields the CPU to the client's bytes and the CRCs they wait for: it may
# finish after the response, which only delays the moment the archive becomes a cache hit.
WRITER_NICE = 19


class Sink(Protocol):
    """Where a streamed archive goes: the client connection."""

    async def write(self, data: bytes) -> None: ...
    async def sendfile(self, path: str, offset: int, count: int) -> None: ...


class CrcRunner:
    """Computes the plan's entry CRCs in order in one thread; async and thread waiters."""

    def __init__(self, jobs: Sequence[CrcJob], cache: CrcCache) -> None:
        self._jobs = jobs
        self._cache = cache
        self.values: list[int] = []
        self._error: BaseException | None = None
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._progress = asyncio.Event()
        self._waiting = 0  # coroutines in `wait`: only they need the loop woken (a wake-up per file was a syscall each)
        self._future: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self._jobs:
            self._future = in_thread(self._run, name="download-crc")  # off the shared executor

    def _run(self) -> None:
        buffer = crc_buffer(self._jobs)  # one for every file
        try:
            for job in self._jobs:
                if self._stop.is_set():
                    raise ArchiveSourceChanged("stopped")
                value = job_crc(job, self._cache, buffer)
                with self._condition:
                    self.values.append(value)
                    self._condition.notify_all()
                if self._waiting:  # read after the append: a waiter that missed the value is counted by now
                    self._loop.call_soon_threadsafe(self._progress.set)
        except BaseException as exc:
            with self._condition:
                self._error = exc
                self._condition.notify_all()
            self._loop.call_soon_threadsafe(self._progress.set)

    async def wait(self, count: int) -> Sequence[int]:
        while len(self.values) < count:
            if self._error is not None:
                raise self._error
            self._progress.clear()
            self._waiting += 1  # before the check below: a value appended after it is signalled
            try:
                if len(self.values) >= count or self._error is not None:
                    continue
                await self._progress.wait()
            finally:
                self._waiting -= 1
        return self.values

    def wait_sync(self, count: int, stop: threading.Event) -> Sequence[int]:
        with self._condition:
            while len(self.values) < count:
                if self._error is not None:
                    raise self._error
                if stop.is_set():
                    raise ArchiveSourceChanged("stopped")
                self._condition.wait(0.1)
        return self.values

    async def close(self) -> None:
        self._stop.set()
        if self._future is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._future)


def write_plan(plan: ArchivePlan, temp: Path, crcs: CrcRunner, stop: threading.Event) -> None:
    """The cache copy of a plan (blocking): headers written, file regions copied by the kernel."""
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        pending = bytearray()
        for part in plan.parts:
            if stop.is_set():
                raise ArchiveSourceChanged("stopped")
            if isinstance(part, bytes):
                pending += part
                continue
            if isinstance(part, Deferred):
                pending += part.render(crcs.wait_sync(part.needs, stop))
                continue
            if pending:
                _write_all(fd, pending)
                pending.clear()
            _copy_span(part, fd, stop)
        if pending:
            _write_all(fd, pending)
        if os.fstat(fd).st_size != plan.size:
            raise ArchiveSourceChanged("the cache copy has the wrong size")
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy_span(span: FileSpan, out_fd: int, stop: threading.Event) -> None:
    source = os.open(span.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        offset, remaining = span.offset, span.length
        while remaining > 0:
            if stop.is_set():
                raise ArchiveSourceChanged("stopped")
            try:
                copied = os.copy_file_range(source, out_fd, min(COPY_STEP, remaining), offset)
            except OSError:  # another filesystem or no support: copy through user space
                os.lseek(source, offset, os.SEEK_SET)
                data = os.read(source, min(1024 * 1024, remaining))
                _write_all(out_fd, data)
                copied = len(data)
            if copied == 0:
                raise ArchiveSourceChanged(f"{span.path} is shorter than planned")
            offset += copied
            remaining -= copied
    finally:
        os.close(source)


# File regions up to this size are read (a batch per thread trip) and sent with the header bytes
# around them rather than each through its own open and sendfile: a whole site of small files
# was one thread trip, one cork and one sendfile per file.
INLINE_BYTES = 256 * 1024
INLINE_BATCH_BYTES = 2 * 1024 * 1024  # read ahead per trip, and the most held before a write
INLINE_BATCH_SPANS = 256


async def pump(plan: ArchivePlan, sink: Sink, crcs: CrcRunner) -> None:
    """Send a plan: header bytes written, small file regions read and written with them, larger
    ones through sendfile, descriptors when ready."""
    parts = plan.parts
    inline: dict[int, bytearray] = {}  # part index -> its bytes, read ahead
    pending = bytearray()
    for index, part in enumerate(parts):
        if isinstance(part, bytes):
            pending += part
        elif isinstance(part, Deferred):
            pending += part.render(await crcs.wait(part.needs))
        elif not part.length:  # an empty file is an empty entry: nothing to send (sendfile refuses 0 bytes)
            continue
        elif part.length <= INLINE_BYTES:
            if index not in inline:
                inline = await asyncio.to_thread(_read_spans, _small_spans_from(parts, index))
            pending += inline.pop(index)
        else:
            if pending:
                await sink.write(bytes(pending))
                pending.clear()
            await sink.sendfile(part.path, part.offset, part.length)
        if len(pending) >= INLINE_BATCH_BYTES:
            await sink.write(bytes(pending))
            pending.clear()
    if pending:
        await sink.write(bytes(pending))


def _small_spans_from(parts: Sequence[Part], first: int) -> list[tuple[int, FileSpan]]:
    """The small file regions from `first` on, within one batch's budget."""
    spans: list[tuple[int, FileSpan]] = []
    total = 0
    for index in range(first, len(parts)):
        part = parts[index]
        if not isinstance(part, FileSpan) or not part.length:
            continue
        if part.length > INLINE_BYTES or (spans and total + part.length > INLINE_BATCH_BYTES):
            break
        spans.append((index, part))
        total += part.length
        if len(spans) >= INLINE_BATCH_SPANS:
            break
    return spans


def _read_spans(spans: Sequence[tuple[int, FileSpan]]) -> dict[int, bytearray]:
    """Each region's bytes, exactly (a file now shorter than planned: `ArchiveSourceChanged`)."""
    out = {}
    for index, span in spans:
        try:
            handle = open(span.path, "rb", buffering=0)  # noqa: SIM115 - closed below
        except OSError as exc:  # gone or made unreadable since it was planned
            raise ArchiveSourceChanged(f"{span.path} can no longer be read ({exc.strerror})") from None
        with handle:
            data = bytearray(span.length)
            read_span(handle, span, memoryview(data))
        out[index] = data
    return out


def plan_slice(plan: ArchivePlan, start: int, stop: int) -> ArchivePlan:
    """Bytes [start, stop) of a plan as a plan of their own, for a Range request: file regions
    and header bytes cut to fit, and only the CRC jobs the deferred parts in it need."""
    parts: list[Part] = []
    needs = 0
    position = 0
    for part in plan.parts:
        length = part_length(part)
        first, last = max(start, position) - position, min(stop, position + length) - position
        if first < last:
            if isinstance(part, bytes):
                parts.append(part[first:last])
            elif isinstance(part, FileSpan):
                parts.append(FileSpan(part.path, part.offset + first, last - first))
            else:
                parts.append(Deferred(part.needs, last - first, _cut(part.render, first, last)))
                needs = max(needs, part.needs)
        position += length
        if position >= stop:
            break
    return ArchivePlan(parts, stop - start, plan.content_type, plan.crc_jobs[:needs])


def _cut(render: Callable[[Sequence[int]], bytes], first: int, last: int) -> Callable[[Sequence[int]], bytes]:
    def render_cut(crcs: Sequence[int]) -> bytes:
        return render(crcs)[first:last]

    return render_cut


def in_thread(
    function: Callable[..., None], *args: object, nice: int = 0, name: str = "download-cache-writer"
) -> asyncio.Future[None]:
    """Run `function` in a thread of its own (niced: Linux sets priority per thread) -> a future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    def run() -> None:
        if nice:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        error: BaseException | None = None
        try:
            function(*args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def retrieve(future: asyncio.Future[None]) -> None:
    """Mark a helper's outcome as seen (its failure is reported by whoever awaits it, if anyone)."""
    if not future.cancelled():
        future.exception()

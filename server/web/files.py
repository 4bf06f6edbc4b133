"""The one file responder: exactly the bytes of a file, with sendfile, validators and ranges.

`send_file` serves media, thumbnails, static assets and cached archives: conditional requests
in RFC 9110 order (304/412), one byte range (206/416), `If-Range`, HEAD, `Last-Modified` never
in the future. Unlike `web.FileResponse` it never serves a precompressed `.gz`/`.br` sibling
in place of the file asked for, and it opens with `O_NOFOLLOW`, so a file swapped for a symlink
after the path check fails. `send_region` is the one sendfile loop (streamed archives use it
too); files are opened with `server.infra.pools.open_regular`, off the loop with `open_off_loop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from aiohttp import web

from server.errors import PreconditionFailed
from server.infra.pools import open_off_loop, open_regular
from server.web.conditional import (
    Outcome,
    RangeNotSatisfiable,
    evaluate,
    http_date,
    if_range_holds,
    last_modified_seconds,
    parse_range,
)

log = logging.getLogger("archive_catalog")
SENDFILE_FALLBACK_CHUNK = 256 * 1024
CORK: int | None = getattr(socket, "TCP_CORK", None)  # Linux
# Only regions up to this size are corked. A 2.8 MB archive and a 13 KiB image gain from the
# cork (wrk); a bigger file leaves faster without it, even with the cork lifted after its first
# 4 MiB: a 256 MiB file to a Python client 1.09 -> 1.48 GB/s, to curl 2.0 -> 2.2 (paired ratio
# 1.11), a 1 GiB file 1.40 -> 1.63 and 2.77 -> 2.89 GB/s (interleaved A/B, 10 rounds)
CORKED_BYTES = 4 * 1024 * 1024


def file_etag(info: os.stat_result) -> str:
    return f'"{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}"'


async def send_file(
    request: web.Request,
    path: str,
    content_type: str,
    cache_control: str,
    extra_headers: Mapping[str, str] | None = None,
    etag: str | None = None,
) -> web.StreamResponse:
    """Serve exactly the bytes of `path` (sendfile), with validators, 304/412 and one Range.

    `etag` replaces the file's own (inode/mtime/size) tag when the caller has a stronger
    identity for the content, e.g. a cached archive named by a hash of what it holds.
    """
    handle, info = await open_off_loop(open_regular, path)
    try:
        return await send_open_file(request, handle, info, content_type, cache_control, extra_headers, etag)
    finally:
        handle.close()


async def send_open_file(
    request: web.Request,
    handle: BinaryIO,
    info: os.stat_result,
    content_type: str,
    cache_control: str,
    extra_headers: Mapping[str, str] | None = None,
    etag: str | None = None,
) -> web.StreamResponse:
    """`send_file` for a file the caller has opened (and closes)."""
    etag = etag or file_etag(info)
    last_modified = last_modified_seconds(info.st_mtime, time.time())
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(last_modified),
        "Cache-Control": cache_control,
        "Accept-Ranges": "bytes",
    }
    if extra_headers:
        headers.update(extra_headers)
    outcome = evaluate(request.method, request.headers, etag, last_modified)
    if outcome is Outcome.PRECONDITION_FAILED:
        raise PreconditionFailed("The file changed since the version your request names.")
    if outcome is Outcome.NOT_MODIFIED:
        not_modified = web.StreamResponse(status=304, headers=headers)
        await not_modified.prepare(request)
        return not_modified

    size = info.st_size
    status, offset, count = 200, 0, size
    if request.method == "GET" and if_range_holds(request.headers.get("If-Range"), etag, last_modified):
        try:
            byte_range = parse_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            # no Cache-Control/validators: a 416 must not be stored in place of the file
            unsatisfiable = web.StreamResponse(
                status=416, headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"}
            )
            unsatisfiable.content_length = 0
            await unsatisfiable.prepare(request)
            return unsatisfiable
        if byte_range is not None:
            status, offset, count = 206, byte_range.start, byte_range.length
            headers["Content-Range"] = byte_range.content_range(size)
    headers["Content-Type"] = content_type
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = count
    with corked(request.transport, count):  # a small file's header and body leave in full segments
        await response.prepare(request)
        if request.method != "HEAD" and count:
            try:
                await send_region(request, response, handle, offset, count)
            except ConnectionError:
                # the client went away mid-body: one line, no traceback; aiohttp then drops it quietly
                log.info("client went away during %s %s", request.method, request.path)
                response.force_close()
                return response
        await response.write_eof()
    return response


@contextlib.contextmanager
def corked(transport: asyncio.BaseTransport | None, count: int) -> Iterator[None]:
    """TCP_CORK on the connection while a region of `count` bytes goes out, if it is no bigger
    than `CORKED_BYTES` (as nginx's `tcp_nopush`): the kernel then sends only full segments,
    whatever each sendfile call returns at, and a small file's header and body leave together
    (without it, aiohttp's TCP_NODELAY pushes a short segment at the end of every partial send).
    Uncorking sends the tail at once. A bigger region, not TCP, or not Linux: nothing changes.
    Wrap every `send_region` (it does not cork by itself)."""
    if count > CORKED_BYTES or not _set_cork(transport, True):
        yield
        return
    try:
        yield
    finally:
        _set_cork(transport, False)


def _set_cork(transport: asyncio.BaseTransport | None, on: bool) -> bool:
    """TCP_CORK set or lifted; False where there is none (not TCP, not Linux, closed)."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if CORK is None or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, CORK, int(on))
    except OSError:
        return False
    return True


async def send_region(
    request: web.Request, response: web.StreamResponse, handle: BinaryIO, offset: int, count: int
) -> int:
    """The one sendfile loop: `count` bytes of `handle` from `offset` to the client.

    Returns the bytes sent, fewer only when the file ended early (the caller decides whether
    that matters). Falls back to reads in a thread where sendfile is not possible (TLS).
    """
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("Connection lost")
    loop = asyncio.get_running_loop()
    try:
        return await loop.sendfile(transport, handle, offset, count)
    except NotImplementedError:  # TLS or no sendfile: copy in pieces
        handle.seek(offset)
        sent = 0
        while sent < count:
            chunk = await loop.run_in_executor(None, handle.read, min(SENDFILE_FALLBACK_CHUNK, count - sent))
            if not chunk:
                break
            await response.write(chunk)
            sent += len(chunk)
        return sent

"""GET /api/download: ZIP, PDF and ZIP-of-PDFs of a model, several models or a whole site.

Thin: parse and validate (all 400/404s before the response starts), ask the download
service, then answer one of three ways: a cache hit, already open, through `send_open_file` (sendfile, Range,
If-Range), an in-memory body (`buffer`), or a `StreamResponse` with an exact Content-Length
fed part by part (`stream`; a ZIP stream also answers one Range with a 206, so a download
manager's parallel segments each get only their bytes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import unicodedata
from typing import BinaryIO
from urllib.parse import quote

from aiohttp import web

from server import keys
from server.archives.plans import ArchiveSourceChanged
from server.downloads.selection import FORMATS, fit_name
from server.downloads.service import Download
from server.downloads.streaming import Sink
from server.infra.pools import open_off_loop
from server.web.conditional import ByteRange, RangeNotSatisfiable, if_range_holds, matches_weak, parse_range
from server.web.files import corked, send_open_file, send_region
from server.web.params import Query

log = logging.getLogger("archive_catalog")

CACHE_CONTROL = "private, no-cache"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name as RFC 5987 `filename*`
    (both fit a file-system name: the exact one is capped by the service, the fallback here)."""
    ascii_name = unicodedata.normalize("NFKD", filename.replace("—", "-").replace("–", "-"))
    ascii_name = "".join(c for c in ascii_name if c.isascii() and c.isprintable() and c not in '"\\')
    stem, extension = os.path.splitext(ascii_name.strip() or "download")
    ascii_name = fit_name(stem, extension, mark="...")  # NFKD can make it longer than the exact name
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _headers(download: Download) -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition(download.filename),
        "X-Cache": "HIT" if download.strategy == "cache" else "MISS",
        "X-Download-Strategy": download.strategy,
        "ETag": f'"{download.key}"',
        "Cache-Control": CACHE_CONTROL,
    }


class ResponseSink:
    """Bytes through the response writer; file regions straight from disk with sendfile."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self._request = request
        self._response = response

    async def write(self, data: bytes) -> None:
        await self._response.write(data)

    async def sendfile(self, path: str, offset: int, count: int) -> None:
        handle = await open_off_loop(_open_exactly, path, offset + count)
        try:
            with corked(self._request.transport, count):
                sent = await send_region(self._request, self._response, handle, offset, count)
            if sent != count:
                raise ArchiveSourceChanged(f"{path} changed while it was being sent")
        finally:
            handle.close()


def _open_exactly(path: str, needed: int) -> BinaryIO:
    handle = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    if os.fstat(handle.fileno()).st_size < needed:
        handle.close()
        raise ArchiveSourceChanged(f"{path} is shorter than planned")
    return handle


def _wanted_range(request: web.Request, etag: str, size: int) -> ByteRange | None:
    """The one byte range a GET asks of a stream (If-Range permitting); an unsatisfiable one
    is ignored, as RFC 9110 allows: the whole archive is sent."""
    if not if_range_holds(request.headers.get("If-Range"), etag, None):
        return None
    try:
        return parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        return None


async def download(request: web.Request) -> web.StreamResponse:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("site", "model", "format"))
    site = query.required("site")
    fmt = query.choice("format", FORMATS, "zip")
    models = query.all("model")
    for model in models:
        if not model:
            query.required("model")  # the same 400 as for any empty required parameter
    service = request.app[keys.DOWNLOADS]
    prepared = await service.prepare(site, models, fmt)
    headers = _headers(prepared)
    if request.method == "GET":
        figures = request.app[keys.DOWNLOAD_METRICS]
        figures.downloads.labels(prepared.strategy, fmt).inc()
        figures.bytes.labels(prepared.strategy).inc(prepared.estimate)
    if prepared.cached is not None:
        cached, etag = prepared.cached, headers.pop("ETag")
        try:
            return await send_open_file(
                request, cached.handle, cached.info, prepared.content_type, CACHE_CONTROL, headers, etag=etag
            )
        finally:
            cached.close()
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and matches_weak(if_none_match, headers["ETag"]):
        return web.Response(status=304, headers=headers)  # same key, same bytes: nothing to build
    response = web.StreamResponse(headers=headers)
    response.content_type = prepared.content_type
    ranges = fmt == "zip" and prepared.strategy == "stream"  # a ZIP's plan is free to make again and cut
    if ranges:
        response.headers["Accept-Ranges"] = "bytes"
    if request.method == "HEAD":  # nothing is built just to count bytes; a ZIP's size is known anyway
        if fmt == "zip":
            response.content_length = prepared.estimate
        await response.prepare(request)
        return response
    if prepared.strategy == "buffer":
        with request.app[keys.DOWNLOAD_METRICS].build_seconds.labels(fmt, "buffer").time():
            body = await service.buffered(prepared)
        return web.Response(body=body, content_type=prepared.content_type, headers=headers)

    async def start(size: int) -> Sink:
        response.content_length = size
        await response.prepare(request)
        return ResponseSink(request, response)

    wanted = _wanted_range(request, headers["ETag"], prepared.estimate) if ranges else None
    if wanted is None:
        sending = service.stream(prepared, start)
    else:
        response.set_status(206)
        response.headers["Content-Range"] = wanted.content_range(prepared.estimate)
        sending = service.stream_range(prepared, wanted.start, wanted.length, start)
    try:
        with request.app[keys.DOWNLOAD_METRICS].build_seconds.labels(fmt, "stream").time():
            await sending
    except ConnectionError:
        return response  # the client went away: logged once by the service, nothing more to send
    except ArchiveSourceChanged as exc:
        # after the start (before it the service answers 409): the Content-Length promised can
        # no longer be kept, so cut the connection rather than send a wrong archive
        log.warning("Download of %s abandoned: %s", prepared.filename, exc)
        if request.transport is not None:
            request.transport.abort()
        return response
    with contextlib.suppress(ConnectionError):  # every byte is out; a hang-up now changes nothing
        await response.write_eof()
    return response

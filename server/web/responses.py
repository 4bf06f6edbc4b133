"""JSON responses: a rendered body (gzip or identity, each with its own ETag) or a one-off.

`send_rendered` picks the gzip or identity bytes of a cached body (`Vary: Accept-Encoding`)
and answers 304 from `If-None-Match`; `send_json` renders a one-off body the same way.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from server.infra.representation import Rendered, render
from server.web.conditional import accepts_gzip, matches_weak

REVALIDATE = "no-cache"


@lru_cache(maxsize=1024)
def _rendered_headers(etag: str, cache_control: str, gzip: bool, not_modified: bool) -> CIMultiDictProxy[str]:
    """The headers of a rendered body, built once per validator (aiohttp copies them per response)."""
    headers: CIMultiDict[str] = CIMultiDict()
    headers["Vary"] = "Accept-Encoding"
    headers["Cache-Control"] = cache_control
    if gzip and not not_modified:
        headers["Content-Encoding"] = "gzip"
    headers["ETag"] = etag
    if not not_modified:
        headers["Content-Type"] = "application/json"
    return CIMultiDictProxy(headers)


def send_rendered(request: web.Request, rendered: Rendered, cache_control: str = REVALIDATE) -> web.Response:
    """A rendered JSON body: gzip when accepted and worth it, 304 when the client has it."""
    request_headers = request.headers
    accept = request_headers.get("Accept-Encoding")
    gzip = rendered.gzip_body is not None and bool(accept) and accepts_gzip(accept)
    etag = rendered.gzip_etag if gzip else rendered.etag
    assert etag is not None
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None and matches_weak(if_none_match, etag):
        return web.Response(status=304, headers=_rendered_headers(etag, cache_control, gzip, True))
    body = rendered.gzip_body if gzip else rendered.body
    return web.Response(body=body, headers=_rendered_headers(etag, cache_control, gzip, False))


def send_json(request: web.Request, data: Any, cache_control: str = "no-store") -> web.Response:
    """A one-off JSON answer (state that changes, so not stored by caches by default)."""
    return send_rendered(request, render(data), cache_control)

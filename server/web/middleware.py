"""The one request guard: access checks, every error turned into the JSON error shape, and the
request figures for /metrics, around every route's handler (and `unmatched`, the last route, for
paths no route has); and the connection handler that does the same for what aiohttp's HTTP
parser rejects before any handler runs.

Domain `AppError`s and aiohttp's own HTTP exceptions (unknown route, wrong method, body too
large) become `{"error", "message"}` with the right status. The one exception: a 404 for a
browser (a GET that accepts `text/html`) outside the machine-facing paths (`/api`, `/media`,
`/thumb`, `/static`, `/ws`, `/metrics`, `/healthz`) is an HTML page in the app's look instead.
Anything unexpected is logged with its traceback on the server and answered with a generic 500:
nothing internal leaks.
`JsonErrorRequestHandler` answers a request line over the limit (414), a header over the limit
(431) or malformed HTTP (400) in that same shape; `server.serve` runs the server with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from server import keys
from server.errors import AppError

log = logging.getLogger("archive_catalog")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    416: "range_not_satisfiable",
    431: "header_too_large",
    503: "unavailable",
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps({"error": code, "message": message})
    response = web.Response(status=status, body=body, content_type="application/json", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response


UNEXPECTED = "The server hit an unexpected error; it has been logged."
MACHINE_PATHS = ("/api", "/media", "/thumb", "/static", "/ws", "/metrics", "/healthz")


def _wants_html_page(request: web.Request) -> bool:
    """A browser navigating to a page (not an API client, not a sub-resource of the app)."""
    if request.method not in ("GET", "HEAD") or "text/html" not in request.headers.get("Accept", ""):
        return False
    path = request.path
    return not any(path == prefix or path.startswith(prefix + "/") for prefix in MACHINE_PATHS)


def _html_not_found(request: web.Request) -> web.Response:
    assets = request.app[keys.STATIC_ASSETS]
    response = web.Response(status=404, text=assets.not_found_page(request.path), content_type="text/html")
    response.headers.update({"Cache-Control": "no-store", **assets.page_headers})
    return response


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    status = exc.status
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after", "www-authenticate")}
    if status == 405:
        allowed = exc.headers.get("Allow", "")
        message = f"{request.method} is not allowed on {request.path}; use {allowed or 'another method'}."
    elif status == 404:
        message = f"No route matches {request.path}."
    elif status == 413:
        message = "The request body is larger than 1 MiB."
    else:
        message = exc.text or exc.reason
        if exc.content_type != "text/plain" or len(message) > 300:
            message = exc.reason
    return error_response(status, _HTTP_CODES.get(status, "error"), message, headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


Observe = Callable[[str, str, int, float], None]
Guard = Callable[..., Handler]  # (handler, route name for /metrics = learnt) -> guarded handler


def make_guard(check_access: Callable[[web.Request], None], observe: Observe) -> Guard:
    """The one request guard, wrapped around every route's handler by `add_routes`: access
    checks, domain and HTTP errors turned into JSON (or the HTML 404 page for a browser), the
    request figures. It does what an aiohttp middleware would, without aiohttp's middleware
    layer, which costs as much again per request as the guard itself (a bare app with one
    pass-through middleware answers 14 % fewer requests); routes no resource matches reach it
    through `unmatched`, the last route."""

    def guard(handler: Handler, name: str = "") -> Handler:
        route_name = name  # for /metrics: the route's canonical path, learnt at its first request

        async def guarded(request: web.Request) -> web.StreamResponse:
            nonlocal route_name
            started = time.perf_counter()
            if not route_name:
                route_name = _route_name(request)
            try:
                check_access(request)
                response = await handler(request)
            except AppError as exc:
                response = error_response(exc.status, exc.code, exc.message, exc.headers)
            except web.HTTPException as exc:
                if exc.status < 400:  # redirects pass through untouched
                    observe(route_name, request.method, exc.status, time.perf_counter() - started)
                    raise
                response = _from_http_exception(request, exc)
            except ConnectionResetError:
                raise  # the client went away: nothing to answer, nothing to log loudly
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.path)
                response = error_response(500, "internal_error", UNEXPECTED)
            if response.status == 404 and _wants_html_page(request):
                response = _html_not_found(request)
            observe(route_name, request.method, response.status, time.perf_counter() - started)
            return response

        return guarded

    return guard


UNMATCHED = "unmatched"


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


async def unmatched(request: web.Request) -> web.StreamResponse:
    """The last route (any method, any path): 405 with `Allow` when another route has the path
    for other methods, else 404 (the guard answers both in JSON, or a browser the HTML 404)."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is request.match_info.route.resource:
            continue
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol, answering what its HTTP parser rejects (and the rare
    error that escapes the app) in the JSON error shape instead of plain text, logged on one line."""

    __slots__ = ()

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a response has begun, the connection is lost
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            response = error_response(status, "internal_error", UNEXPECTED)
        else:
            status, code, text = self._refusal(status, exc, message)
            log.info("refused a request from %s: %d %s", request.remote, status, text)
            response = error_response(status, code, text)
        response.force_close()
        return response

    def _refusal(self, status: int, exc: BaseException | None, message: str | None) -> tuple[int, str, str]:
        if isinstance(exc, LineTooLong):  # args: (the line's start, the limit it went over, ...)
            limit = exc.args[1]
            if limit == self.max_field_size and limit != self.max_line_size:
                return 431, "header_too_large", f"A request header is longer than {limit} bytes."
            return 414, "uri_too_long", f"The request line is longer than {limit} bytes."
        detail = " ".join(str(exc.message if isinstance(exc, HttpProcessingError) else message or "").split())
        text = f"The request is not valid HTTP: {detail}" if detail else "The request is not valid HTTP."
        return status, _HTTP_CODES.get(status, "bad_request"), text[:300]

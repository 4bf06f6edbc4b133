"""Who may do what: body size, the bearer token or session cookie, the same-origin rule.

`AccessPolicy.check` runs first in the one middleware. A declared body over 1 MiB is a 413
before anything reads it (aiohttp alone would only refuse it when a handler reads). With no token configured it only
guards against cross-site requests: a POST/DELETE or WebSocket handshake whose `Origin`
differs from the server's own origin is refused with 403; requests with no `Origin` (curl,
scripts) pass. With a token, every route but the open ones needs it (constant-time compare).
"""

from __future__ import annotations

import hmac

from aiohttp import web

from server.config import MAX_BODY_BYTES
from server.errors import Forbidden, PayloadTooLarge, Unauthorized

COOKIE_NAME = "catalog_session"
OPEN_PATHS = frozenset({"/healthz", "/login"})
UNSAFE_METHODS = frozenset({"POST", "DELETE", "PUT", "PATCH"})


class AccessPolicy:
    def __init__(self, token: str | None, public_url: str | None) -> None:
        self._token = token.encode() if token else None
        self._public_origin = public_url.rstrip("/").lower() if public_url else None

    def token_matches(self, candidate: str | None) -> bool:
        return (
            self._token is not None and candidate is not None and hmac.compare_digest(candidate.encode(), self._token)
        )

    def check(self, request: web.Request) -> None:
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            raise PayloadTooLarge("The request body is larger than 1 MiB.")
        if self._token is not None and request.path not in OPEN_PATHS:
            self._check_token(request)
        if request.method in UNSAFE_METHODS or request.headers.get("Upgrade", "").lower() == "websocket":
            self._check_origin(request)

    def _check_token(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(credentials.strip()):
            return
        if self.token_matches(request.cookies.get(COOKIE_NAME)):
            return
        raise Unauthorized(
            "This server needs a token: send 'Authorization: Bearer <token>' or open /login?token=<token>.",
            headers={"WWW-Authenticate": 'Bearer realm="archive-catalog"'},
        )

    def _check_origin(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin is None:
            return
        own = self._public_origin or f"{request.scheme}://{request.host}".lower()
        if origin.rstrip("/").lower() != own:
            raise Forbidden("Cross-origin requests may not change anything here.", code="cross_origin")

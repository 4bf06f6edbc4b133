"""The exception hierarchy that domain code raises (no aiohttp here).

Each error carries its HTTP status, a stable machine code and a sentence for people;
`server.web.middleware` turns them into the contract's JSON error shape.
"""

from __future__ import annotations

from typing import ClassVar


class AppError(Exception):
    """An error with an HTTP status, a stable code and a sentence for people."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.headers = headers or {}


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class ServiceUnavailable(AppError):
    status = 503
    code = "unavailable"


class PreconditionFailed(AppError):
    status = 412
    code = "precondition_failed"

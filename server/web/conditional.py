"""RFC 9110 validators, conditional requests and byte ranges, as pure functions.

Every route that answers with a validator (catalog JSON, media, thumbnails, cached archives)
decides 304/412/206/416 here, so the rules are written once:
- If-Match / If-Unmodified-Since (412) are evaluated before If-None-Match / If-Modified-Since
  (304), and a date condition is ignored when its entity-tag twin is present (§13.2.2).
- If-None-Match uses weak comparison, If-Match and If-Range strong comparison (§8.8.3.2).
- A Range is honoured only for GET, only when If-Range (if sent) still matches, and only as a
  single range; a multi-range or malformed Range is ignored (a full 200 is a valid answer).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from enum import Enum
from functools import lru_cache


class Outcome(Enum):
    SEND = 200
    NOT_MODIFIED = 304
    PRECONDITION_FAILED = 412


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end}/{total}"


class RangeNotSatisfiable(Exception):
    """The Range names no byte of the representation (416)."""


@lru_cache(maxsize=4096)  # Last-Modified of the files served most: made once each, not per response
def http_date(seconds: float) -> str:
    return formatdate(seconds, usegmt=True)


def parse_http_date(text: str | None) -> float | None:
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def last_modified_seconds(mtime: float, now: float | None = None) -> int:
    """Whole seconds for Last-Modified, never later than now (RFC 9110 §8.8.2.1)."""
    current = time.time() if now is None else now
    return int(min(mtime, current))


def _etags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def matches_weak(header: str, etag: str) -> bool:
    """If-None-Match: does any listed tag equal ours, ignoring weakness?"""
    ours = _opaque(etag)
    return any(tag == "*" or _opaque(tag) == ours for tag in _etags(header))


def matches_strong(header: str, etag: str) -> bool:
    """If-Match: does any listed strong tag equal our strong tag?"""
    if etag.startswith("W/"):
        return any(tag == "*" for tag in _etags(header))
    return any(tag == "*" or tag == etag for tag in _etags(header))


def evaluate(
    method: str,
    headers: Mapping[str, str],
    etag: str | None,
    last_modified: int | None,
) -> Outcome:
    """Decide between sending, 304 and 412 for a representation with these validators."""
    if_match = headers.get("If-Match")
    if if_match is not None:
        if etag is None or not matches_strong(if_match, etag):
            return Outcome.PRECONDITION_FAILED
    else:
        unmodified_since = parse_http_date(headers.get("If-Unmodified-Since"))
        if unmodified_since is not None and last_modified is not None and last_modified > unmodified_since:
            return Outcome.PRECONDITION_FAILED
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        if etag is not None and matches_weak(if_none_match, etag):
            return Outcome.NOT_MODIFIED if method in ("GET", "HEAD") else Outcome.PRECONDITION_FAILED
        return Outcome.SEND
    if method in ("GET", "HEAD"):
        modified_since = parse_http_date(headers.get("If-Modified-Since"))
        if modified_since is not None and last_modified is not None and last_modified <= modified_since:
            return Outcome.NOT_MODIFIED
    return Outcome.SEND


def if_range_holds(header: str | None, etag: str | None, last_modified: int | None) -> bool:
    """True when there is no If-Range, or it names the current representation exactly."""
    if header is None:
        return True
    header = header.strip()
    if header.startswith('"') or header.startswith("W/"):
        return etag is not None and not etag.startswith("W/") and header == etag
    date = parse_http_date(header)
    return date is not None and last_modified is not None and int(date) == last_modified


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range asked for, None to send the whole body, or RangeNotSatisfiable."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or not spec or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return ByteRange(start, min(end, size - 1))


@lru_cache(maxsize=256)  # a pure function of a header value that clients repeat on every request
def accepts_gzip(accept_encoding: str) -> bool:
    """Does this Accept-Encoding admit gzip (named, or by '*', with a non-zero q)?"""
    named: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip().replace(" ", "")
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        named[coding.strip()] = q
    if "gzip" in named:
        return named["gzip"] > 0
    if "x-gzip" in named:
        return named["x-gzip"] > 0
    return named.get("*", 0.0) > 0

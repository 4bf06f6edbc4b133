"""Encoded JSON bodies: the bytes, their gzip twin and a strong ETag for each.

A `Rendered` is made once per cache fill; serving it afterwards does no encoding or
compression work. The gzip bytes are deterministic (mtime 0), so equal JSON always yields
equal bytes and the strong validators stay honest; the two encodings never share an ETag.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

import orjson
from blake3 import blake3

GZIP_MIN_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    etag: str
    gzip_body: bytes | None
    gzip_etag: str | None


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


def render(data: Any) -> Rendered:
    body = dumps(data)
    digest = blake3(body).hexdigest(length=16)
    if len(body) > GZIP_MIN_BYTES:
        return Rendered(body, f'"{digest}"', gzip.compress(body, compresslevel=6, mtime=0), f'"{digest}-gz"')
    return Rendered(body, f'"{digest}"', None, None)

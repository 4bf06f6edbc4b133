"""Media files: `/media/{site}/{model…}/{file}` served byte for byte with sendfile."""

from __future__ import annotations

import os
from typing import BinaryIO

from aiohttp import web

from server import keys
from server.infra.pools import open_off_loop, open_regular
from server.library import Library, content_type
from server.web.files import send_open_file

PUBLIC_MEDIA = "public, max-age=86400"
# Behind a token, shared caches must not keep what only token holders may see.
PRIVATE_MEDIA = "private, max-age=86400"


def media_cache_control(app: web.Application) -> str:
    return PRIVATE_MEDIA if app[keys.CONFIG].auth_token else PUBLIC_MEDIA


def _open_media(library: Library, relative: str) -> tuple[BinaryIO, os.stat_result, str]:
    """The media file checked (inside the library, a media name, a regular file) and opened, in
    one trip to a thread; with its status and name."""
    path = library.media_path(relative)
    handle, info = open_regular(str(path))
    return handle, info, path.name


async def media(request: web.Request) -> web.StreamResponse:
    handle, info, name = await open_off_loop(_open_media, request.app[keys.LIBRARY], request.match_info["path"])
    try:
        return await send_open_file(request, handle, info, content_type(name), media_cache_control(request.app))
    finally:
        handle.close()

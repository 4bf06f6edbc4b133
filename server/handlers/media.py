"""Media files: `/media/{site}/{model…}/{file}` served byte for byte with sendfile."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server import keys
from server.library import content_type
from server.web.files import send_file

PUBLIC_MEDIA = "public, max-age=86400"
# Behind a token, shared caches must not keep what only token holders may see.
PRIVATE_MEDIA = "private, max-age=86400"


def media_cache_control(app: web.Application) -> str:
    return PRIVATE_MEDIA if app[keys.CONFIG].auth_token else PUBLIC_MEDIA


async def media(request: web.Request) -> web.StreamResponse:
    relative = request.match_info["path"]
    library = request.app[keys.LIBRARY]
    path = await asyncio.to_thread(library.media_path, relative)
    return await send_file(request, str(path), content_type(path.name), media_cache_control(request.app))

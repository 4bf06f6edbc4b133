"""Media files: `/media/{site}/{model…}/{file}` served byte for byte with sendfile."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .. import keys
from ..library import content_type
from .responses import send_file

MEDIA_CACHE_CONTROL = "public, max-age=86400"


async def media(request: web.Request) -> web.StreamResponse:
    relative = request.match_info["path"]
    library = request.app[keys.LIBRARY]
    path = await asyncio.to_thread(library.media_path, relative)
    return await send_file(request, str(path), content_type(path.name), MEDIA_CACHE_CONTROL)


def setup(app: web.Application) -> None:
    app.router.add_get("/media/{path:.+}", media)

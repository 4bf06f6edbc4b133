"""The browser app: the page shell at `/` (aiohttp-jinja2) and its assets under `/static/`.

The assets are plain ES modules and CSS from `templates/static/`, read once at start into a
manifest (path -> file, content type, content hash). The shell links each asset as
`/static/<path>?v=<hash>` and maps every module through an import map, so modules that import
each other get hashed URLs too. A request carrying the current hash is cached for a year
(`immutable`); any other is revalidated. Only manifest paths are served, so nothing outside
the static folder can be reached. The page carries a Content-Security-Policy that allows only
this origin (and the import map and the theme script by their hashes).
"""

from __future__ import annotations

import hashlib

import aiohttp_jinja2
from aiohttp import web

from server import keys
from server.errors import NotFound
from server.web.assets import THEME_SCRIPT
from server.web.conditional import matches_weak
from server.web.files import send_file
from server.web.params import Query

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


async def index(request: web.Request) -> web.Response:
    """The page shell; every view is drawn by the app from the URL's query."""
    assets = request.app[keys.STATIC_ASSETS]
    response = aiohttp_jinja2.render_template(
        "index.html",
        request,
        {
            "style_url": assets.url("style.css"),
            "app_url": assets.url("app.js"),
            "import_map": assets.import_map,
            "theme_script": THEME_SCRIPT,
            "modules": assets.module_urls(),
        },
    )
    body = response.body
    assert isinstance(body, bytes)
    etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
    response.headers.update(
        {
            "ETag": etag,
            "Cache-Control": REVALIDATE,
            **assets.page_headers,
        }
    )
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and matches_weak(if_none_match, etag):
        return web.Response(status=304, headers={k: v for k, v in response.headers.items() if k != "Content-Type"})
    return response


async def static(request: web.Request) -> web.StreamResponse:
    relative = request.match_info["path"]
    asset = request.app[keys.STATIC_ASSETS].assets.get(relative)
    if asset is None:
        raise NotFound("No such static file.")
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("v",))
    current = query.text("v", max_length=64) == asset.digest
    extra = {"X-Content-Type-Options": "nosniff"}
    return await send_file(request, asset.path, asset.content_type, IMMUTABLE if current else REVALIDATE, extra)

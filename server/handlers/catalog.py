"""Catalog routes: sites, a site's models, a model's media, search across sites, cache statistics and clearing.

The listing routes are the hot path. Parsing and validating a query string is a pure
function of its raw text, so the parsed query is memoised per raw string (a browser
re-requests the same few URLs); an invalid one raises every time and is never memoised.
"""

from __future__ import annotations

from functools import lru_cache

from aiohttp import web

from server import keys
from server.catalog import MODEL_SORTS, ModelQuery, ModelsQuery, SearchQuery
from server.web.params import Query
from server.web.responses import send_json, send_rendered

MAX_MODELS_PAGE = 500
MAX_MEDIA_LIMIT = 5000
MAX_SEARCH_LIMIT = 500
MAX_SEARCH_TEXT = 200
MAX_INT = 2**31 - 1
PARSED_QUERIES_KEPT = 1024


async def sites(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    return send_rendered(request, await request.app[keys.CATALOG].sites())


@lru_cache(maxsize=PARSED_QUERIES_KEPT)
def parse_models_query(raw_query: str) -> ModelsQuery:
    query = Query(raw_query)
    query.reject_unknown(("site", "page", "limit", "sort", "order", "q"))
    return ModelsQuery(
        site=query.required("site"),
        page=query.integer("page", default=1, low=1, high=MAX_INT) or 1,
        limit=query.integer("limit", default=50, low=1, high=MAX_MODELS_PAGE) or 50,
        sort=query.choice("sort", MODEL_SORTS, "name"),
        order=query.choice("order", ("asc", "desc"), "asc"),
        q=query.text("q", default="", max_length=200) or "",
    )


@lru_cache(maxsize=PARSED_QUERIES_KEPT)
def parse_model_query(raw_query: str) -> ModelQuery:
    query = Query(raw_query)
    query.reject_unknown(("site", "model", "offset", "images_limit", "videos_limit"))
    return ModelQuery(
        site=query.required("site"),
        model=query.required("model"),
        offset=query.integer("offset", default=0, low=0, high=MAX_INT) or 0,
        images_limit=query.integer("images_limit", default=None, low=1, high=MAX_MEDIA_LIMIT),
        videos_limit=query.integer("videos_limit", default=None, low=1, high=MAX_MEDIA_LIMIT),
    )


@lru_cache(maxsize=PARSED_QUERIES_KEPT)
def parse_search_query(raw_query: str) -> SearchQuery:
    query = Query(raw_query)
    query.reject_unknown(("q", "limit"))
    return SearchQuery(
        q=query.required("q", max_length=MAX_SEARCH_TEXT),
        limit=query.integer("limit", default=50, low=1, high=MAX_SEARCH_LIMIT) or 50,
    )


async def search(request: web.Request) -> web.Response:
    search_query = parse_search_query(request.rel_url.raw_query_string)
    return send_rendered(request, await request.app[keys.CATALOG].search(search_query))


async def models(request: web.Request) -> web.Response:
    models_query = parse_models_query(request.rel_url.raw_query_string)
    return send_rendered(request, await request.app[keys.CATALOG].models(models_query))


async def model(request: web.Request) -> web.Response:
    model_query = parse_model_query(request.rel_url.raw_query_string)
    return send_rendered(request, await request.app[keys.CATALOG].model(model_query))


async def cache_stats(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    body: dict[str, object] = dict(request.app[keys.CATALOG].stats())
    for provider in request.app[keys.STATS_PROVIDERS]:
        body.update(await provider())
    return send_json(request, body)


async def clear_cache(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    request.app[keys.CATALOG].clear()
    body: dict[str, object] = {"status": "cleared", "memory_caches": "cleared"}
    for clearer in request.app[keys.CLEARERS]:
        body.update(await clearer())
    body["message"] = "Cleared: " + ", ".join(k for k, v in body.items() if v == "cleared" and k != "status") + "."
    return send_json(request, body)

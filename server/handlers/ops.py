"""Operations: health, metrics, the OpenAPI document, and the login that sets the session cookie."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import keys
from server.errors import Unauthorized
from server.web.access import COOKIE_NAME
from server.web.params import Query
from server.web.responses import send_json, send_rendered


async def healthz(request: web.Request) -> web.Response:
    body: dict[str, str] = {"status": "ok", "redis": "off", "instance": request.app[keys.INSTANCE_ID]}
    for check in request.app[keys.HEALTH_CHECKS]:
        body.update(await check())
    return send_json(request, body)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[keys.METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


async def openapi(request: web.Request) -> web.Response:
    return send_rendered(request, request.app[keys.OPENAPI_DOCUMENT])


async def login(request: web.Request) -> web.Response:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("token", "next"))
    policy = request.app[keys.ACCESS]
    if not policy.token_matches(query.text("token", max_length=512)):
        raise Unauthorized("That token is not right.")
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        COOKIE_NAME, query.required("token", max_length=512), httponly=True, samesite="Strict", path="/"
    )
    response.headers["Cache-Control"] = "no-store"
    raise response

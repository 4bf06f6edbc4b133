"""Operations: health, metrics, the OpenAPI document, and the login that sets the session cookie.

`/healthz` answers 503 with `"status": "degraded"` while the library folder is missing (an
unmounted drive): every catalog route answers 503 then, so a load balancer or monitor must not
see "ok". It costs no disk access: the folder watcher's last sweep already knows. Redis being
down is reported but is not degraded: the service then carries on with local behaviour.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import keys
from server.errors import Unauthorized
from server.infra.representation import render
from server.web.access import COOKIE_NAME
from server.web.params import Query
from server.web.responses import send_json, send_rendered


async def healthz(request: web.Request) -> web.Response:
    library_up = request.app[keys.WATCHER].available
    body: dict[str, str] = {
        "status": "ok" if library_up else "degraded",
        "redis": "off",
        "library": "ok" if library_up else "missing",
        "instance": request.app[keys.INSTANCE_ID],
    }
    for check in request.app[keys.HEALTH_CHECKS]:
        body.update(await check())
    if library_up:
        return send_json(request, body)
    # never a 304: a monitor must see the 503 every time
    return web.Response(
        status=503, body=render(body).body, content_type="application/json", headers={"Cache-Control": "no-store"}
    )


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

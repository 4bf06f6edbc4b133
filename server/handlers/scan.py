"""Scan routes (both kinds), the duplicates' routes and the live event socket.

POST /api/scan?kind=exact|similar, POST /api/scan/cancel, GET /api/scan_progress,
GET /api/duplicates, POST /api/duplicates/delete, POST /api/duplicates/resolve and GET /ws.
The JSON body readers here (`json_body`, `delete_body`, `resolve_body`) serve the similar-image
routes too (server.handlers.similar). `setup` registers
the routes, the hash-cache stats and clearer, the hub's event-bus subscription and the
GOING_AWAY close on shutdown; `scan_context` (a cleanup context) runs the worker pool for the app's lifetime.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import orjson
from aiohttp import web

from server import keys
from server.errors import BadRequest
from server.infra.events import SCAN_KINDS
from server.scan.results import RULES
from server.web.params import Query
from server.web.responses import send_json

MAX_DELETE_PATHS = 500
MAX_RESOLVE_GROUPS = 5000


async def start_scan(request: web.Request) -> web.Response:
    query = Query(request.rel_url.raw_query_string)
    query.reject_unknown(("kind",))
    kind = query.choice("kind", SCAN_KINDS, "exact")
    scan_id = await request.app[keys.SCAN].start(kind)
    response = send_json(request, {"status": "started", "scan_id": scan_id, "kind": kind})
    response.set_status(202)
    return response


async def cancel_scan(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    request.app[keys.SCAN].cancel()
    return send_json(request, {"status": "cancelling"})


async def scan_progress(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    return send_json(request, request.app[keys.SCAN].snapshot())


async def duplicates(request: web.Request) -> web.Response:
    Query(request.rel_url.raw_query_string).reject_unknown(())
    service = request.app[keys.SCAN]
    await asyncio.to_thread(service.refresh_results)
    return send_json(request, service.duplicates())


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise BadRequest("A JSON object in the body names a key twice.", code="invalid_json")
    return found


async def json_body(request: web.Request) -> Any:
    """The body as JSON; a key given twice is refused (which one would count is ambiguous)."""
    raw = await request.read()
    try:
        orjson.loads(raw)  # strict UTF-8 and syntax first
        return json.loads(raw, object_pairs_hook=_unique_keys)
    except (orjson.JSONDecodeError, RecursionError):
        raise BadRequest("The body must be JSON.", code="invalid_json") from None


async def delete_body(
    request: web.Request, optional: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], str, list[str]]:
    """A delete's body `{"keep": path, "delete": [path, ...]}` (plus `optional` keys): the
    body, `keep` and `delete`."""
    Query(request.rel_url.raw_query_string).reject_unknown(())
    body = await json_body(request)
    if not isinstance(body, dict) or set(body) - {"keep", "delete"} - optional:
        extra = "".join(f', "{name}"?' for name in sorted(optional))
        raise BadRequest(f'The body must be {{"keep": path, "delete": [path, ...]{extra}}}.')
    keep, delete = body.get("keep"), body.get("delete")
    if not isinstance(keep, str) or not keep:
        raise BadRequest("'keep' must be a path relative to the library.")
    if not isinstance(delete, list) or not all(isinstance(p, str) and p for p in delete):
        raise BadRequest("'delete' must be a list of paths relative to the library.")
    if len(delete) > MAX_DELETE_PATHS:
        raise BadRequest(f"'delete' may list at most {MAX_DELETE_PATHS} paths.")
    return body, keep, delete


async def delete_duplicates(request: web.Request) -> web.Response:
    _body, keep, delete = await delete_body(request)
    result = await request.app[keys.SCAN].delete_duplicates(keep, delete)
    return send_json(request, result)


SITE_NAME = re.compile(r"[^/\0]+")
MODEL_NAME = re.compile(r"[^/\0]+(/[^/\0]+)*")  # a model may be nested: "patreon/joão"


async def resolve_body(
    request: web.Request, rules: tuple[str, ...], optional: frozenset[str]
) -> tuple[dict[str, Any], list[str] | None, bool]:
    """A resolution's body `{"rule", "groups", "dry_run"?}` (plus `optional` keys): the body,
    the chosen group ids (None: "all") and `dry_run`; `site`, when given, is a site name."""
    Query(request.rel_url.raw_query_string).reject_unknown(())
    body = await json_body(request)
    if not isinstance(body, dict) or not {"rule", "groups"} <= set(body) <= {"rule", "groups", "dry_run"} | optional:
        extra = "".join(f', "{name}"?' for name in sorted(optional | {"dry_run"}))
        raise BadRequest(f'The body must be {{"rule", "groups"{extra}}}.')
    rule, groups, dry_run = body["rule"], body["groups"], body.get("dry_run", False)
    if rule not in rules:
        raise BadRequest(f"'rule' must be one of {', '.join(rules)}.")
    if groups != "all" and (not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups)):
        raise BadRequest("'groups' must be \"all\" or a list of group ids.")
    if isinstance(groups, list) and not 1 <= len(groups) <= MAX_RESOLVE_GROUPS:
        raise BadRequest(f"'groups' must list between 1 and {MAX_RESOLVE_GROUPS} group ids.")
    if not isinstance(dry_run, bool):
        raise BadRequest("'dry_run' must be true or false.")
    if "site" in body and not (isinstance(body["site"], str) and SITE_NAME.fullmatch(body["site"])):
        raise BadRequest("'site' must be a site name.")
    if rule == "in_site" and "site" not in body:
        raise BadRequest(f"The rule {rule!r} needs 'site'.")
    return body, None if groups == "all" else groups, dry_run


async def resolve_duplicates(request: web.Request) -> web.Response:
    body, groups, dry_run = await resolve_body(request, RULES, frozenset({"site", "model"}))
    rule = body["rule"]
    if "model" in body and not (isinstance(body["model"], str) and MODEL_NAME.fullmatch(body["model"])):
        raise BadRequest("'model' must be a model name.")
    needed = {"in_site": ("site",), "in_model": ("site", "model")}.get(rule, ())
    for name in needed:
        if name not in body:
            raise BadRequest(f"The rule {rule!r} needs '{name}'.")
    service = request.app[keys.SCAN]
    await asyncio.to_thread(service.refresh_results)
    result = await service.resolve_duplicates(
        rule,
        groups,
        site=body.get("site") if "site" in needed else None,
        model=body.get("model") if "model" in needed else None,
        dry_run=dry_run,
    )
    return send_json(request, result)


async def websocket(request: web.Request) -> web.StreamResponse:
    """The live event socket; a plain GET (no WebSocket handshake) gets the `hello` snapshot."""
    Query(request.rel_url.raw_query_string).reject_unknown(())
    hub = request.app[keys.HUB]
    if not hub.is_handshake(request):
        return send_json(request, hub.hello())
    return await hub.handle(request)

"""The page shell at / and its assets under /static: hashed URLs, caching, safety, OpenAPI."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest
from yarl import URL

from server import keys
from server.web.assets import STATIC, load_assets

from .conftest import Client
from .http_support import lint_response


async def test_page_shell(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-cache"
    page = await response.text()
    assert '<html lang="en">' in page
    assert 'name="viewport"' in page
    for word in ("Sites", "Duplicates", "Trash"):
        assert f">{word}</a>" in page
    assert re.search(r'<script type="module" src="/static/app\.js\?v=[0-9a-f]{16}">', page)
    assert re.search(r'<link rel="stylesheet" href="/static/style\.css\?v=[0-9a-f]{16}">', page)
    assert '<dialog id="lightbox"' in page


async def test_page_accepts_any_view_query_and_revalidates(client: Client) -> None:
    response = await client.get("/?site=alpha&model=ana&file=img1.jpg&q=x&sort=bytes")
    assert response.status == 200
    again = await client.get("/", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


async def test_import_map_gives_every_module_a_hashed_url(client: Client) -> None:
    page = await (await client.get("/")).text()
    match = re.search(r'<script type="importmap">(.*?)</script>', page)
    assert match
    imports = json.loads(match.group(1))["imports"]
    modules = {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*.js")}
    assert {key.removeprefix("/static/") for key in imports} == modules
    for key, url in imports.items():
        assert url.startswith(key + "?v=")
        response = await client.get(url)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


async def test_csp_allows_the_import_map_by_hash(client: Client) -> None:
    response = await client.get("/")
    page = await response.text()
    csp = response.headers["Content-Security-Policy"]
    import_map = re.search(r'<script type="importmap">(.*?)</script>', page)
    assert import_map
    digest = base64.b64encode(hashlib.sha256(import_map.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_static_without_current_hash_is_revalidated(client: Client) -> None:
    for url in ("/static/app.js", "/static/app.js?v=0000000000000000"):
        response = await client.get(url)
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-cache"
        etag = response.headers["ETag"]
        again = await client.get(url, headers={"If-None-Match": etag})
        assert again.status == 304


async def test_static_asset_bytes_and_range(client: Client) -> None:
    data = (STATIC / "style.css").read_bytes()
    response = await client.get("/static/style.css")
    assert await response.read() == data
    assert response.headers["Content-Type"].startswith("text/css")
    partial = await client.get("/static/style.css", headers={"Range": "bytes=0-9"})
    assert partial.status == 206 and await partial.read() == data[:10]


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/../server/app.py",
        "/static/..%2Fserver%2Fapp.py",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/views",
        "/static/",
        "/static//etc/passwd",
    ],
)
async def test_only_manifest_files_are_served(client: Client, path: str) -> None:
    response = await client.get(URL(path, encoded=True))
    assert response.status == 404
    body = await response.json()
    assert set(body) == {"error", "message"}


async def test_unknown_static_parameter_is_refused(client: Client) -> None:
    response = await client.get("/static/app.js?x=1")
    assert response.status == 400


def test_manifest_hash_changes_with_content(tmp_path: Any) -> None:
    (tmp_path / "app.js").write_text("export const a = 1;\n")
    (tmp_path / "style.css").write_text("body{}\n")
    (tmp_path / ".hidden.js").write_text("secret\n")
    (tmp_path / "notes.txt").write_text("not served\n")
    first = load_assets(tmp_path)
    assert set(first.assets) == {"app.js", "style.css"}
    (tmp_path / "app.js").write_text("export const a = 2;\n")
    second = load_assets(tmp_path)
    assert first.url("app.js") != second.url("app.js")
    assert first.url("style.css") == second.url("style.css")
    assert first.import_map != second.import_map


async def test_openapi_documents_the_ui_routes(client: Client) -> None:
    document = await (await client.get("/api/openapi.json")).json()
    for path in ("/", "/static/{path}", "/thumb/{path}"):
        assert "get" in document["paths"][path], path
    width = next(p for p in document["paths"]["/thumb/{path}"]["get"]["parameters"] if p["name"] == "w")
    assert width["schema"]["minimum"] == 64 and width["schema"]["maximum"] == 1024


@pytest.mark.parametrize("url", ["/", "/static/app.js", "/static/style.css?v=0", "/static/nope.js"])
async def test_page_and_asset_responses_pass_the_http_linter(client: Client, url: str) -> None:
    assert await lint_response(client, url, {"Accept-Encoding": "gzip"}) == []


async def test_current_asset_passes_the_http_linter(client: Client) -> None:
    page = await (await client.get("/")).text()
    match = re.search(r'src="(/static/app\.js\?v=[0-9a-f]+)"', page)
    assert match
    assert await lint_response(client, match.group(1)) == []


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("path", ["/nope", "/media-x", "/sites/alpha", "/api-docs", "/<b>x</b>"])
async def test_mistyped_page_address_gives_a_browser_an_html_404(client: Client, path: str) -> None:
    response = await client.get(path, headers={"Accept": BROWSER_ACCEPT})
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Content-Security-Policy"] == client.app[keys.STATIC_ASSETS].csp
    page = await response.text()
    assert '<a class="button" href="/">' in page
    assert re.search(r'<link rel="stylesheet" href="/static/style\.css\?v=[0-9a-f]{16}">', page)
    assert "<b>" not in page  # the path is shown as text, never as markup
    assert await lint_response(client, path, {"Accept": BROWSER_ACCEPT}) == []


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/nope", "application/json"),
        ("/nope", "*/*"),
        ("/api/nope", BROWSER_ACCEPT),
        ("/api", BROWSER_ACCEPT),
        ("/media/alpha/nobody/x.jpg", BROWSER_ACCEPT),
        ("/thumb/alpha/nobody/x.jpg", BROWSER_ACCEPT),
        ("/static/nope.js", BROWSER_ACCEPT),
        ("/ws/x", BROWSER_ACCEPT),
        ("/metrics/x", BROWSER_ACCEPT),
        ("/healthz/x", BROWSER_ACCEPT),
    ],
)
async def test_machine_addresses_and_api_clients_keep_the_json_404(client: Client, path: str, accept: str) -> None:
    response = await client.get(path, headers={"Accept": accept})
    assert response.status == 404
    body = await response.json()
    assert set(body) == {"error", "message"}


async def test_html_404_only_for_reads(client: Client) -> None:
    response = await client.post("/nope", headers={"Accept": BROWSER_ACCEPT})
    assert response.status in (404, 405)
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(("path", "accept"), [("/", "*/*"), ("/nope", BROWSER_ACCEPT)])
async def test_every_inline_script_is_allowed_by_its_hash(client: Client, path: str, accept: str) -> None:
    response = await client.get(path, headers={"Accept": accept})
    page = await response.text()
    csp = response.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script(?: type=\"importmap\")?>(.*?)</script>", page, re.DOTALL)
    assert len(scripts) == (2 if path == "/" else 1)  # the import map only on the app
    assert any("localStorage" in s for s in scripts)  # the theme script, in <head> before the stylesheet
    assert page.index("localStorage") < page.index('rel="stylesheet"')
    for source in scripts:
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "'unsafe-inline'" not in csp

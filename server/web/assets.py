"""The browser app's static assets: a manifest of files, content hashes and the page's CSP.

Pure code (no aiohttp). `templates/static/` is read once at start; each file gets a content
hash for cache-busting URLs, every ES module an import-map entry so modules importing each
other get hashed URLs too, and the Content-Security-Policy allows that import map and the
theme script by their hashes. The theme script (the one inline script besides the import map) runs in `<head>`,
so the chosen light/dark theme is on `<html data-theme>` before the first paint.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from dataclasses import dataclass
from pathlib import Path

import orjson


def templates_folder() -> Path:
    """The page shell and assets: inside the installed package (`server/templates`, as a wheel
    ships them), else `templates/` at the top of the source tree (a checkout, an editable install)."""
    server_package = Path(__file__).resolve().parents[1]
    packaged = server_package / "templates"
    return packaged if (packaged / "index.html").is_file() else server_package.parent / "templates"


TEMPLATES = templates_folder()
STATIC = TEMPLATES / "static"
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}


# Sets <html data-theme="light|dark"> from the stored choice ("light", "dark", or none: follow
# the system) and keeps it current: when the system's scheme changes, when another tab stores a
# choice, and on the app's `themechange` event (its toggle; the choice is the event's detail).
THEME_SCRIPT = """(() => {
  const root = document.documentElement;
  const system = matchMedia("(prefers-color-scheme: dark)");
  let choice = null;
  try { choice = localStorage.getItem("theme"); } catch {}
  const apply = () => {
    if (choice !== "light" && choice !== "dark") choice = "auto";
    root.dataset.themeChoice = choice;
    root.dataset.theme = choice === "auto" ? (system.matches ? "dark" : "light") : choice;
  };
  apply();
  system.addEventListener("change", apply);
  addEventListener("storage", (event) => { if (event.key === "theme") { choice = event.newValue; apply(); } });
  addEventListener("themechange", (event) => { choice = event.detail; apply(); });
})();"""


def script_hash(source: str) -> str:
    """A CSP source allowing exactly this inline script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


@dataclass(frozen=True, slots=True)
class Asset:
    path: str
    content_type: str
    digest: str


@dataclass(frozen=True, slots=True)
class StaticAssets:
    """What `/static/` may serve, and the page shell's pieces that depend on it."""

    assets: dict[str, Asset]
    import_map: str
    csp: str

    @property
    def page_headers(self) -> dict[str, str]:
        """The security headers of every HTML page the app serves (the shell and the 404 page)."""
        return {
            "Content-Security-Policy": self.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }

    def url(self, relative: str) -> str:
        return f"/static/{relative}?v={self.assets[relative].digest}"

    def module_urls(self) -> list[str]:
        """Every ES module but the entry point, for `<link rel="modulepreload">` (no waterfall)."""
        return [self.url(name) for name in sorted(self.assets) if name.endswith(".js") and name != "app.js"]

    def not_found_page(self, path: str) -> str:
        """The HTML 404 a browser gets for a mistyped address: the app's look, a way back to `/`."""
        return NOT_FOUND_PAGE.format(
            style_url=html.escape(self.url("style.css")), path=html.escape(path), theme_script=THEME_SCRIPT
        )


NOT_FOUND_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Not found · archive-catalog</title>
<script>{theme_script}</script>
<link rel="stylesheet" href="{style_url}">
<link rel="icon" href="data:,">
</head>
<body>
<header class="topbar"><a class="brand" href="/">archive-catalog</a></header>
<main id="main" class="state">
  <h1>Page not found</h1>
  <p>Nothing lives at <code>{path}</code>. The address may be mistyped, or the page has moved.</p>
  <p><a class="button" href="/">Back to the sites</a></p>
</main>
</body>
</html>
"""


def load_assets(folder: Path = STATIC) -> StaticAssets:
    assets: dict[str, Asset] = {}
    for directory, _dirs, files in os.walk(folder):
        for name in files:
            ext = os.path.splitext(name)[1].lower()
            if name.startswith(".") or ext not in STATIC_TYPES:
                continue
            full = Path(directory) / name
            relative = full.relative_to(folder).as_posix()
            digest = hashlib.sha256(full.read_bytes()).hexdigest()[:16]
            assets[relative] = Asset(str(full), STATIC_TYPES[ext], digest)
    modules = {
        f"/static/{relative}": f"/static/{relative}?v={asset.digest}"
        for relative, asset in sorted(assets.items())
        if relative.endswith(".js")
    }
    import_map = orjson.dumps({"imports": modules}).decode()
    csp = "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {script_hash(import_map)} {script_hash(THEME_SCRIPT)}",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )
    return StaticAssets(assets, import_map, csp)

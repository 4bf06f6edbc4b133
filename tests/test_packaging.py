"""The server as people install and run it: the built wheel in a fresh venv, the command line's
help and version, the start banner, and the docs a clone holds (API reference, README links)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from server.__main__ import banner
from server.config import _SETTINGS, Config, help_text, package_version
from server.web.openapi import load_document

from .helpers import make_library

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("get", "post", "delete", "put", "patch", "head")


def test_help_names_every_setting_with_its_environment_twin() -> None:
    text = " ".join(help_text().split())  # argparse wraps lines
    for flag, env, _metavar, _what in _SETTINGS.values():
        assert flag in text and f"[{env}]" in text, flag
    assert "--version" in text


def test_version_flag_prints_the_installed_version() -> None:
    done = subprocess.run([sys.executable, "-m", "server", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0
    assert done.stdout.strip() == f"archive-catalog {package_version()}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", package_version())


def test_the_banner_says_where_the_demo_library_is_and_how_to_remove_it(tmp_path: Path) -> None:
    demo = make_library(tmp_path / "cache" / "demo-library")
    text = banner(Config(models_dir=demo, cache_dir=tmp_path / "cache", demo=True))
    assert f"generated in {demo}" in text
    assert f"rm -r {demo}" in text
    assert "--models-dir" in text
    assert "rm -r" not in banner(Config(models_dir=demo, cache_dir=tmp_path / "cache"))


def _documented_routes(text: str) -> set[tuple[str, str]]:
    """(METHOD, path) pairs named in the API reference, path parameters as `{…}`."""
    found = set()
    for method, path in re.findall(r"\b(GET|POST|DELETE|PUT|PATCH) (/[^\s|`?]*)", text):
        found.add((method, path))
    return found


def _openapi_routes() -> dict[tuple[str, str], list[str]]:
    routes = {}
    for path, operations in load_document()["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
                routes[(method.upper(), path)] = names
    return routes


def _same_route(documented: str, openapi: str) -> bool:
    """`/media/{site}/{model}/{path}` (people's reading) is `/media/{path}` (one greedy segment)."""
    if documented == openapi:
        return True
    prefix = openapi.split("{", 1)[0]
    return "{" in openapi and openapi.endswith("{path}") and documented.startswith(prefix) and "{" in documented


def test_the_api_reference_and_the_openapi_document_name_the_same_routes_and_parameters() -> None:
    reference = (ROOT / "docs" / "API.md").read_text()
    documented = _documented_routes(reference)
    openapi = _openapi_routes()
    for (method, path), parameters in openapi.items():
        assert any(m == method and _same_route(p, path) for m, p in documented), f"docs/API.md lacks {method} {path}"
        for name in parameters:
            assert f"`{name}`" in reference or f"{name}=" in reference, f"docs/API.md lacks {name} of {path}"
    for method, path in documented:
        assert any(m == method and _same_route(path, p) for m, p in openapi), f"{method} {path} is not in OpenAPI"


def test_every_readme_link_resolves_in_a_clone() -> None:
    for name in ("README.md", "SECURITY.md", "benchmarks/README.md", "docs/API.md"):
        document = ROOT / name
        text = document.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (document.parent / target.split("#", 1)[0]).resolve()
            assert resolved.is_relative_to(ROOT), f"{name} links outside the repository: {target}"
            assert resolved.exists(), f"{name} links to a missing file: {target}"
        assert "/work/" not in text, f"{name} cites a machine-specific path"


def test_the_wheel_lists_every_package_of_the_source_tree() -> None:
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "server").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject's packages: {sorted(found - listed)}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.packaging
def test_the_built_wheel_installed_in_a_fresh_venv_serves_the_page_and_its_assets(tmp_path: Path) -> None:
    """`pip install .`, a wheel or pipx get the page too: the templates ship inside the package."""
    # what a person's shell would have: nothing pointing into this checkout
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODELS_DIR", "CACHE_DIR")}
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("archive_catalog-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=environment)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True, env=environment
    )
    assert install.returncode == 0, install.stderr[-2000:]

    library = make_library(tmp_path / "library")
    port = _free_port()
    process = subprocess.Popen(
        [str(venv / "bin" / "archive-catalog"), "--port", str(port), "--models-dir", str(library),
         "--cache-dir", str(tmp_path / "cache")],
        cwd=tmp_path,  # not the checkout: everything must come from the installed package
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the installed server did not start"
            time.sleep(0.2)
        status, page = _get(f"{base}/")
        assert status == 200
        assert b"<html" in page
        style = re.search(rb'href="(/static/style\.css\?v=[0-9a-f]+)"', page)
        assert style is not None, page[:500]
        status, css = _get(base + style.group(1).decode())
        assert status == 200 and len(css) > 100
        status, api = _get(f"{base}/api/openapi.json")
        assert status == 200 and b'"openapi"' in api
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


def test_the_dockerfile_copies_what_exists_runs_unprivileged_and_starts_the_console_script() -> None:
    """A static check (this machine has no container runtime to build it; see the README)."""
    import tomllib

    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    instructions = [line for line in lines if not line.startswith("#")]
    for line in instructions:
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _destination = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies a missing {source}"
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = next(line for line in instructions if line.startswith("ENTRYPOINT"))
    assert re.search(r'\["([\w-]+)"\]', entrypoint).group(1) in scripts  # type: ignore[union-attr]
    assert any(line.startswith("HEALTHCHECK") for line in instructions)

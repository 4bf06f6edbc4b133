"""The servers a benchmark measures, each a pinned `ServerProcess` (see `benchmarks.processes`):
ours (`start_catalog_server`) and the peers: a minimal aiohttp handler returning fixed bytes
(`start_bytes_peer`), a bare `web.FileResponse` file server (`start_file_peer`) and nginx
(`start_nginx`). The Python peers run as `python -m benchmarks.peers …`."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .processes import ServerProcess, catalog_argv, free_port, start_process
from .settings import CHECKOUT, PYTHON, REPO_ROOT, SERVER_CPU, pinned

START_TIMEOUT_S = 30.0


def start_pinned(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    ready_path: str = "/",
    cpu: str = SERVER_CPU,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
    cwd: Path = REPO_ROOT,
) -> ServerProcess:
    """Start `argv` pinned to `cpu`, output in workdir/server.log; return once it answers HTTP.

    Without `workdir` a temporary folder is made; it is removed when the process stops.
    """
    on_stop: list[Callable[[], object]] = []
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name.split()[0]}-"))
        on_stop.append(functools.partial(shutil.rmtree, workdir, ignore_errors=True))
    return start_process(
        name,
        pinned(cpu, argv),
        port=port,
        log_path=workdir / "server.log",
        ready_path=ready_path,
        env=env,
        cwd=cwd,
        timeout_s=START_TIMEOUT_S,
        on_stop=on_stop,
    )


def start_catalog_server(
    models_dir: Path,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
    checkout: Path = CHECKOUT,
    cpu: str = SERVER_CPU,
    cache_dir: Path | None = None,
) -> ServerProcess:
    """Our server (`python -m server` run in `checkout`: BENCH_CHECKOUT or this one) on a free port.

    Another `checkout` (e.g. `git worktree add /tmp/base main`) measures a before/after in one run.
    Without `cache_dir` a temporary one is made and removed when the server stops.
    """
    port = free_port()
    cleanup: list[Callable[[], object]] = []
    if cache_dir is None:
        cache_dir = Path(tempfile.mkdtemp(prefix="bench-ours-cache-"))
        cleanup.append(functools.partial(shutil.rmtree, cache_dir, ignore_errors=True))
    try:
        process = start_pinned(
            "archive-catalog",
            catalog_argv(models_dir, cache_dir, port, *extra_args),
            port=port,
            ready_path="/healthz",
            env=env,
            cwd=checkout,
            cpu=cpu,
        )
    except BaseException:
        for step in cleanup:
            step()
        raise
    process.on_stop.extend(cleanup)
    return process


def start_bytes_peer(body: bytes, headers: Mapping[str, str] | None = None) -> ServerProcess:
    """A minimal aiohttp app answering every GET with `body` (and `headers`): the req/s ceiling."""
    port = free_port()
    body_dir = Path(tempfile.mkdtemp(prefix="bench-bytes-body-"))
    body_path = body_dir / "body"
    body_path.write_bytes(body)
    header_args: list[str] = []
    for key, value in (headers or {"Content-Type": "application/json"}).items():
        header_args += ["--header", f"{key}: {value}"]
    argv = [PYTHON, "-m", "benchmarks.peers", "bytes-server", "--port", str(port), "--body", str(body_path)]
    try:
        process = start_pinned("minimal aiohttp", [*argv, *header_args], port=port)
    except BaseException:
        shutil.rmtree(body_dir, ignore_errors=True)
        raise
    process.on_stop.append(functools.partial(shutil.rmtree, body_dir, ignore_errors=True))
    return process


def start_file_peer(root: Path) -> ServerProcess:
    """A bare aiohttp app serving files under `root` with `web.FileResponse` (sendfile, no checks)."""
    port = free_port()
    return start_pinned(
        "aiohttp FileResponse",
        [PYTHON, "-m", "benchmarks.peers", "file-server", "--port", str(port), "--root", str(root)],
        port=port,
    )


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ {location} }}
    }}
}}
"""


def start_nginx(root: Path, location: str = "") -> ServerProcess:
    """nginx (one process) serving `root` on loopback; `location` adds directives to `location /`."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=workdir, port=port, root=root, location=location))
    try:
        process = start_pinned("nginx", [nginx, "-p", str(workdir), "-c", str(conf)], port=port, workdir=workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    process.on_stop.append(functools.partial(shutil.rmtree, workdir, ignore_errors=True))
    return process

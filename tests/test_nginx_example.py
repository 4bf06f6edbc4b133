"""The README's "Running several instances" example works: nginx in front of two instances."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from benchmarks.processes import free_port
from benchmarks.settings import REPO_ROOT

from .redis_support import SHARED_URL, require_redis
from .server_process import distinct_instances, get_json, start_server, stop_server


def _nginx() -> str:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed (CI=true)")
        pytest.skip("nginx is not installed")
    return binary


def test_two_instances_behind_nginx(library_root: Path, tmp_path: Path) -> None:
    require_redis()
    nginx = _nginx()
    ports = [free_port(), free_port()]
    front = free_port()
    config = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    config = config.replace("127.0.0.1:8008", f"127.0.0.1:{ports[0]}").replace(
        "127.0.0.1:8009", f"127.0.0.1:{ports[1]}"
    )
    config = config.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{front}")
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "nginx.conf").write_text(config)
    servers = [start_server(library_root, tmp_path / "cache", "--redis-url", SHARED_URL, port=port) for port in ports]
    proxy = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"])
    try:
        instances = distinct_instances(f"http://127.0.0.1:{front}")
        assert len(instances) == 2, "nginx did not reach both instances"
        assert get_json(f"http://127.0.0.1:{front}/healthz")["redis"] == "ok"
        request = urllib.request.Request(
            f"http://127.0.0.1:{front}/api/file?site=alpha&model=bruno&path=a.jpg",
            method="DELETE",
            headers={"Origin": f"http://127.0.0.1:{front}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # same origin through the proxy
            assert response.status == 200
    finally:
        proxy.send_signal(signal.SIGQUIT)
        proxy.wait(timeout=30)
        for server in servers:
            assert "Traceback" not in stop_server(server)

"""--workers N: N processes answer on one port (SO_REUSEPORT) and act as one service."""

from __future__ import annotations

from pathlib import Path

from .redis_support import SHARED_URL, require_redis
from .server_process import distinct_instances, get_json, start_server, stop_server


def test_two_workers_share_one_port(library_root: Path, tmp_path: Path) -> None:
    require_redis()
    server = start_server(library_root, tmp_path / "cache", "--workers", "2", "--redis-url", SHARED_URL)
    try:
        instances = distinct_instances(server.url)
        assert len(instances) == 2, "connections were not spread over two worker processes"
        sites = get_json(f"{server.url}/api/sites")["sites"]
        assert [s["name"] for s in sites] == ["alpha", "beta"]  # type: ignore[attr-defined]
    finally:
        output = stop_server(server)
    assert server.process.returncode == 0, output
    assert "workers:  2" in output and "Traceback" not in output

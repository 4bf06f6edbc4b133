"""A download whose build is in flight when the cache is cleared or a delete purges it: the
client gets its archive, the cache does not keep it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.downloads import service as service_module
from server.infra.events import LibraryChanged

from .conftest import ClientFactory
from .http_support import check_zip, get, settle


@pytest.mark.parametrize(("threshold_mb", "how"), [(100, "clear"), (0, "clear"), (100, "purge"), (0, "purge")])
async def test_a_build_in_flight_during_a_clear_or_purge_is_sent_but_not_cached(
    make_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold_mb: int, how: str
) -> None:
    """An archive whose build began before `clear_cache` (or a delete's purge) still reaches its
    client, but is not stored afterwards: it may hold what was deleted, and a cleared cache
    stays empty of what was in flight."""
    client = await make_client(threshold_mb=threshold_mb)
    service = client.app[keys.DOWNLOADS]
    started, release = threading.Event(), threading.Event()
    gated = "render_bytes" if threshold_mb else "write_plan"  # the buffer's build, the stream's cache copy
    real = getattr(service_module, gated)

    def gate(*args: Any) -> Any:
        started.set()
        assert release.wait(10)
        return real(*args)

    monkeypatch.setattr(service_module, gated, gate)
    url = "/api/download?site=alpha&model=ana"
    request = asyncio.ensure_future(get(client, url))
    assert await asyncio.to_thread(started.wait, 10)
    if how == "clear":
        assert (await client.post("/api/clear_cache")).status == 200
    else:
        service.on_library_changed(LibraryChanged(site="alpha", model="bruno"))
    release.set()
    status, headers, body = await request
    assert (status, headers["X-Cache"]) == (200, "MISS")
    check_zip(body, tmp_path)
    await settle(client)
    assert service.store.temp_files() == []
    status, headers, _ = await get(client, url)
    assert (status, headers["X-Cache"]) == (200, "MISS")  # nothing was stored

"""Two instances sharing Redis, the library and the cache dir act as one scanner: one scan at a
time across both, progress and results visible on both, a cancel from either."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.infra.events import ScanFinished, ScanProgress, ScanStarted
from server.scan.run import ScanRun

from .conftest import Client, ClientFactory
from .helpers import eventually
from .redis_support import SHARED_URL, require_redis
from .scan_support import TERMINAL

pytestmark = pytest.mark.redis


def _slow_library(root: Path, groups: int = 400) -> None:
    """Many small same-size pairs: with one group per batch the scan takes many round trips."""
    for i in range(groups):
        data = os.urandom(1000 + i)
        for copy in ("a", "b"):
            path = root / "s" / f"m{i % 9}" / f"{copy}{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


async def _redis_up(client: Client) -> bool:
    return bool((await (await client.get("/healthz")).json())["redis"] == "ok")


async def test_one_scan_across_instances_and_results_on_both(tmp_path: Path, make_client: ClientFactory) -> None:
    require_redis()
    root = tmp_path / "shared-library"
    _slow_library(root)
    first = await make_client(models_dir=root, redis_url=SHARED_URL)
    second = await make_client(models_dir=root, redis_url=SHARED_URL)
    for client in (first, second):
        await eventually(functools.partial(_redis_up, client), within=15)
        client.app[keys.SCAN].batch_files = 2  # one group per batch: a scan long enough to overlap
    async with second.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=10)
        assert (await first.post("/api/scan")).status == 202
        refused = await second.post("/api/scan")
        assert refused.status == 409
        assert (await refused.json())["error"] == "scan_running"
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] not in TERMINAL:
            seen.append(await ws.receive_json(timeout=30))  # the first instance's events, relayed
    assert seen[-1]["type"] == "scan.finished" and seen[-1]["groups"] == 400
    await first.app[keys.SCAN].wait()
    on_first = await (await first.get("/api/duplicates")).json()
    on_second = await (await second.get("/api/duplicates")).json()
    assert on_second == on_first and len(on_second["groups"]) == 400
    # The lock was released: the other instance may scan now, and reuses the shared hash cache.
    assert (await second.post("/api/scan")).status == 202
    await second.app[keys.SCAN].wait()
    again = await (await second.get("/api/duplicates")).json()
    assert again["stats"]["cache_hit_rate"] == 1.0


async def test_cancel_from_the_other_instance(
    tmp_path: Path, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_redis()
    root = tmp_path / "shared-library"
    _slow_library(root, groups=50)
    held: list[bool] = []
    walk = ScanRun._walk

    async def held_until_cancelled(run: ScanRun) -> list[Any]:
        """The scan waits for the cancel before it walks: however fast the scan, the cancel
        sent through the other instance lands while it runs."""
        held.append(True)
        await eventually(lambda: run.cancel_requested, within=15, every=0.01)
        return await walk(run)

    monkeypatch.setattr(ScanRun, "_walk", held_until_cancelled)
    first = await make_client(models_dir=root, redis_url=SHARED_URL)
    second = await make_client(models_dir=root, redis_url=SHARED_URL)
    for client in (first, second):
        await eventually(functools.partial(_redis_up, client), within=15)
    async with first.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=10)
        assert (await first.post("/api/scan")).status == 202

        async def second_sees_it() -> bool:
            body = await (await second.get("/api/scan_progress")).json()
            return bool(body["running"])

        await eventually(second_sees_it, within=15, every=0.02)
        cancelled = await second.post("/api/scan/cancel")
        assert cancelled.status == 200
        kinds: list[str] = []
        while not kinds or kinds[-1] not in TERMINAL:
            kinds.append((await ws.receive_json(timeout=30))["type"])
    assert held and kinds[-1] == "scan.cancelled"
    await first.app[keys.SCAN].wait()

    async def second_sees_the_end() -> bool:
        return not (await (await second.get("/api/scan_progress")).json())["running"]

    await eventually(second_sees_the_end, within=15)
    assert (await second.post("/api/scan/cancel")).status == 409


async def test_a_late_progress_of_a_finished_remote_scan_is_not_a_running_scan(make_client: ClientFactory) -> None:
    """Another instance's events may arrive late: a progress after its scan's outcome does not
    make this instance refuse to scan."""
    client = await make_client()
    service = client.app[keys.SCAN]
    library, other = service.library_id, "other-instance"
    running = {"running": True, "scan_id": "s1", "kind": "exact", "phase": "hashing"}
    service.on_remote_event(ScanStarted(library=library, scan_id="s1", origin=other))
    service.on_remote_event(ScanProgress(library=library, progress=running, origin=other))
    assert (await client.post("/api/scan")).status == 409
    finished = ScanFinished(library=library, scan_id="s1", groups=0, total_wasted=0, stats={}, origin=other)
    service.on_remote_event(finished)
    service.on_remote_event(ScanProgress(library=library, progress=running, origin=other))  # late
    assert service.snapshot()["running"] is False
    assert (await client.post("/api/scan")).status == 202
    await service.wait()
    # a later scan there is mirrored again
    service.on_remote_event(ScanProgress(library=library, progress={**running, "scan_id": "s2"}, origin=other))
    assert service.snapshot()["scan_id"] == "s2"

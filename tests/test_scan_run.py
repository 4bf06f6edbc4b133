"""One scan run's outcome path, its progress throttling, and the hash cache's one save path."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.infra.events import Event, ScanProgress
from server.scan.hashcache import HashCache
from server.scan.progress import Progress, ProgressEmitter
from server.scan.results import Tally, WalkResult

from .conftest import ClientFactory
from .scan_support import run_scan, scan_results


async def test_an_unexpected_error_fails_the_scan_once_and_the_next_scan_runs(
    library_root: Path, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dup = library_root / "alpha" / "ana" / "dup.jpg"
    dup.write_bytes((library_root / "alpha" / "ana" / "img1.jpg").read_bytes())
    client = await make_client()
    service = client.app[keys.SCAN]

    def broken_build(
        scan_id: str, walk: WalkResult, tally: Tally, duration: float, kept: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(service.results, "build", broken_build)
    with caplog.at_level(logging.ERROR, logger="archive_catalog"):
        events = await run_scan(client)
    await service.wait()
    ends = [e for e in events if e["type"] in ("scan.finished", "scan.failed", "scan.cancelled")]
    assert [e["type"] for e in ends] == ["scan.failed"]
    assert ends[0]["message"] == "The scan hit an unexpected error."
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)
    assert service.snapshot()["phase"] == "failed" and service.snapshot()["running"] is False
    assert service.outcomes == {"finished": 0, "cancelled": 0, "failed": 1}
    assert (await client.get("/api/duplicates")).status == 404  # a failed scan leaves no results
    assert service.cache.path.is_file()  # what the workers hashed is kept all the same

    monkeypatch.undo()
    body = await scan_results(client)
    assert [g["files"] for g in body["groups"]] == [["alpha/ana/dup.jpg", "alpha/ana/img1.jpg"]]
    assert service.outcomes == {"finished": 1, "cancelled": 0, "failed": 1}


def test_progress_is_throttled_unless_forced() -> None:
    published: list[Event] = []
    now = [0.0]
    emitter = ProgressEmitter(published.append, "lib", lambda: now[0], interval_s=1.0)
    progress = Progress(running=True, scan_id="s", phase="hashing")
    emitter.emit(progress)
    progress.checked = 1
    emitter.emit(progress)  # within the interval: dropped
    now[0] = 0.5
    emitter.emit(progress, force=True)
    now[0] = 1.2
    emitter.emit(progress)  # 0.7 s after the forced one: dropped
    now[0] = 1.5
    progress.checked = 2
    emitter.emit(progress)
    assert all(isinstance(event, ScanProgress) for event in published)
    assert [event.progress["checked"] for event in published if isinstance(event, ScanProgress)] == [0, 1, 2]


async def test_save_writes_only_what_changed(tmp_path: Path) -> None:
    cache = HashCache(tmp_path)
    await cache.save()
    assert not cache.path.exists()  # nothing learnt, nothing written
    cache.store("s/m/a.jpg", 1, 2, 3, None, "f" * 32)
    await cache.save()
    written = cache.path.stat().st_mtime_ns
    cache.path.write_bytes(b"sentinel")  # a save with no change must not touch the file
    await cache.save()
    assert cache.path.read_bytes() == b"sentinel"
    cache.forget(["s/m/a.jpg"])
    await cache.save()
    assert cache.path.read_bytes() != b"sentinel"
    assert cache.path.stat().st_mtime_ns >= written
    assert HashCache(tmp_path).load() == 0


# -- one meaning per figure ------------------------------------------------------------------


def _progress_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == "scan.progress"]


async def test_scan_figures_agree_in_every_phase_and_channel(library_root: Path, make_client: ClientFactory) -> None:
    same = b"x" * 100_000  # above SMALL_FILE: a head+tail hash, then a full one
    for name in ("a.jpg", "b.jpg"):  # identical
        (library_root / "alpha" / "ana" / name).write_bytes(same)
    (library_root / "alpha" / "ana" / "c.jpg").write_bytes(b"y" * 100_000)  # same size, other head: one hash
    client = await make_client()

    events = await run_scan(client)
    progress = _progress_events(events)
    walking = [p for p in progress if p["phase"] == "walking"]
    assert walking, "the walk reports what it found"
    assert all(p["total"] is None and p["checked"] == 0 and p["files_found"] > 0 for p in walking)
    last = progress[-1]
    stats = events[-1]["stats"]
    assert last["phase"] == "done"
    assert last["files_found"] == stats["files"]  # "Files found" and "scanned N files" say the same
    hashing = [p for p in progress if p["phase"] == "hashing"]
    assert hashing and all(p["total"] == last["total"] and p["checked"] <= p["total"] for p in hashing)
    assert last["checked"] == last["total"] >= 3  # a, b and c at least
    assert last["total"] <= last["files_found"]
    assert last["cache_hits"] == last["hash_cache_hits"] == 0  # nothing known yet
    polled = await (await client.get("/api/scan_progress")).json()
    assert polled == {k: v for k, v in last.items() if k not in ("type", "library")}

    events = await run_scan(client)  # nothing changed: every compared file comes from the cache
    last = _progress_events(events)[-1]
    stats = events[-1]["stats"]
    assert last["cache_hits"] == last["checked"] == last["total"]
    assert last["hash_cache_hits"] == stats["hashes"] == stats["hash_cache_hits"] > last["cache_hits"]  # a, b: two each
    assert stats["cache_hits"] == last["cache_hits"] == stats["files_compared"]

    (library_root / "alpha" / "ana" / "d.jpg").write_bytes(same)  # new: only it must be read
    events = await run_scan(client)
    last = _progress_events(events)[-1]
    assert last["checked"] == last["total"]
    assert last["cache_hits"] == last["checked"] - 1
    assert last["files_found"] == events[-1]["stats"]["files"]
    body = await (await client.get("/api/duplicates")).json()
    assert ["alpha/ana/a.jpg", "alpha/ana/b.jpg", "alpha/ana/d.jpg"] in [g["files"] for g in body["groups"]]


def test_an_idle_progress_has_no_total_yet() -> None:
    body = Progress().to_json()
    assert body["total"] is None and body["checked"] == 0 and body["files_found"] == 0
    assert body["cache_hits"] == body["hash_cache_hits"] == 0

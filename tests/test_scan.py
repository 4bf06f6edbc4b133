"""The duplicate scan over HTTP: results equal the generators' ground truth exactly, one scan at
a time, cancellation, the hash cache, a missing library root."""

from __future__ import annotations

import os
import random
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server import keys
from server.infra.events import ScanProgress
from server.library import natural_key
from server.scan import results as results_module

from .conftest import ClientFactory
from .scan_support import inode_groups, make_duptree, make_library_tree, run_scan, scan_results


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def test_make_library_extras_result_equals_the_manifest(tmp_path: Path, make_client: ClientFactory) -> None:
    root, manifest = make_library_tree(tmp_path, "--sites", "2", "--collections", "5", "--files", "6", "--pool", "4",
                                       "--max-dim", "64", "--dup-rate", "0.3", "--seed", "7")  # fmt: skip
    assert manifest["duplicate_groups"], "the generator made no duplicates"
    client = await make_client(models_dir=root)
    body = await scan_results(client)
    found = [group["files"] for group in body["groups"]]
    assert sorted(sorted(g) for g in found) == sorted(sorted(g) for g in manifest["duplicate_groups"])
    listed = {path for group in found for path in group}
    extras = manifest["extras"]
    for never in (extras["hidden"], extras["symlink_escaping_root"], *extras["empty"], *extras["non_media"]):
        assert never not in listed
    # The wasted bytes and order follow the contract.
    for group in body["groups"]:
        assert group["wasted"] == group["size"] * (len(group["files"]) - 1)
        assert group["size"] == os.path.getsize(root / group["files"][0])
    assert [g["wasted"] for g in body["groups"]] == sorted((g["wasted"] for g in body["groups"]), reverse=True)
    assert body["total_wasted"] == sum(g["wasted"] for g in body["groups"])


async def test_make_duptree_result_equals_the_truth(tmp_path: Path, make_client: ClientFactory) -> None:
    root, truth = make_duptree(tmp_path, "--files", "300", "--dup-groups", "30", "--siblings", "8",
                               "--decoy-sets", "15", "--empty", "5", "--hardlinks", "6", "--pool-mb", "8")  # fmt: skip
    client = await make_client(models_dir=root)
    body = await scan_results(client)
    found = [group["files"] for group in body["groups"]]
    assert len(found) == truth["n_groups_default"]
    assert inode_groups(root, found) == inode_groups(root, truth["groups_default"])
    assert sum(len(g) - 1 for g in found) == truth["redundant_files_default"]
    stats = body["stats"]
    assert stats["files"] == truth["entries"] - truth["categories"]["hardlink"]
    assert stats["cache_hits"] == 0 and stats["cache_hit_rate"] == 0.0
    assert 0 < stats["hashed_bytes"] < stats["bytes"]  # unique sizes were never read


async def test_files_differing_in_first_middle_or_last_byte(tmp_path: Path, make_client: ClientFactory) -> None:
    root = tmp_path / "lib"
    for size in (100, 70_000, 300_000, 2 * 1024 * 1024 + 5):
        base = bytes((i * 7 + size) % 251 for i in range(size))
        _write(root / "s" / "m" / f"orig_{size}.jpg", base)
        _write(root / "s" / "copy" / f"copy_{size}.jpg", base)
        for where, offset in (("first", 0), ("middle", size // 2), ("last", size - 1)):
            changed = bytearray(base)
            changed[offset] ^= 0x5A
            _write(root / "s" / "m" / f"{where}_{size}.jpg", bytes(changed))
    client = await make_client(models_dir=root)
    body = await scan_results(client)
    expected = [
        ["s/copy/copy_2097157.jpg", "s/m/orig_2097157.jpg"],
        ["s/copy/copy_300000.jpg", "s/m/orig_300000.jpg"],
        ["s/copy/copy_70000.jpg", "s/m/orig_70000.jpg"],
        ["s/copy/copy_100.jpg", "s/m/orig_100.jpg"],
    ]
    assert [g["files"] for g in body["groups"]] == expected  # sorted by wasted bytes, largest first


async def test_hard_links_and_empty_files_are_never_duplicates(tmp_path: Path, make_client: ClientFactory) -> None:
    root = tmp_path / "lib"
    data = os.urandom(5000)
    _write(root / "s" / "m" / "a.jpg", data)
    os.link(root / "s" / "m" / "a.jpg", root / "s" / "m" / "a_link.jpg")
    _write(root / "s" / "m" / "e1.jpg", b"")
    _write(root / "s" / "m" / "e2.jpg", b"")
    client = await make_client(models_dir=root)
    body = await scan_results(client)
    assert body["groups"] == []
    assert body["stats"]["files"] == 3  # a.jpg and its link are one file


async def test_second_scan_while_one_runs_is_409(client: TestClient[Any, Any]) -> None:
    first = await client.post("/api/scan")
    assert first.status == 202
    second = await client.post("/api/scan")
    assert second.status == 409
    assert (await second.json())["error"] == "scan_running"
    await client.app[keys.SCAN].wait()
    third = await client.post("/api/scan")
    assert third.status == 202
    await client.app[keys.SCAN].wait()


async def test_cancel(client: TestClient[Any, Any]) -> None:
    assert (await client.post("/api/scan/cancel")).status == 409
    async with client.ws_connect("/ws") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        assert (await client.post("/api/scan")).status == 202
        response = await client.post("/api/scan/cancel")
        assert response.status == 200
        assert await response.json() == {"status": "cancelling"}
        kinds: list[str] = []
        while not kinds or kinds[-1] not in ("scan.finished", "scan.cancelled", "scan.failed"):
            kinds.append((await ws.receive_json(timeout=30))["type"])
    assert kinds[0] == "scan.started" and kinds[-1] == "scan.cancelled"
    progress = await (await client.get("/api/scan_progress")).json()
    assert progress["running"] is False and progress["phase"] == "cancelled"
    assert (await client.get("/api/duplicates")).status == 404  # a cancelled scan leaves no results
    assert (await client.post("/api/scan")).status == 202  # and the next scan may start
    await client.app[keys.SCAN].wait()


async def test_cancel_during_hashing_keeps_what_the_cache_learnt(tmp_path: Path, make_client: ClientFactory) -> None:
    root = tmp_path / "lib"
    for i in range(40):
        data = os.urandom(300_000 + i)
        _write(root / "s" / "a" / f"{i}.mp4", data)
        _write(root / "s" / "b" / f"{i}.mp4", data)
    client = await make_client(models_dir=root)
    service = client.app[keys.SCAN]
    service.batch_files = 2  # one group per batch, so the cancel lands between batches
    learnt: list[int] = []

    def cancel_after_first_batch(event: ScanProgress) -> None:
        progress = event.progress
        if progress["phase"] == "hashing" and progress["checked"] and not learnt:
            learnt.append(len(service.cache))
            service.cancel()

    client.app[keys.EVENTS].subscribe(cancel_after_first_batch, ScanProgress)
    service.progress_interval_s = 0.0
    events = await run_scan(client)
    assert events[-1]["type"] == "scan.cancelled"
    assert learnt and 0 < learnt[0] <= len(service.cache) < 80
    await service.wait()
    assert service.cache.path.is_file()  # saved on the way out


async def test_rescan_uses_the_hash_cache(tmp_path: Path, make_client: ClientFactory) -> None:
    root, _truth = make_duptree(tmp_path, "--files", "200", "--dup-groups", "20", "--siblings", "4",
                                "--decoy-sets", "9", "--empty", "3", "--hardlinks", "4", "--pool-mb", "8")  # fmt: skip
    client = await make_client(models_dir=root)
    first = await scan_results(client)
    stats = await (await client.get("/api/cache_stats")).json()
    assert stats["hash_cache"]["entries"] > 0
    second = await scan_results(client)
    assert second["stats"]["cache_hit_rate"] == 1.0
    assert second["stats"]["hashed_bytes"] == 0
    assert second["stats"]["hash_cache_hits"] == second["stats"]["hashes"] > 0
    assert second["stats"]["cache_hits"] == second["stats"]["files_compared"] > 0
    assert second["groups"] == first["groups"]

    # A new app on the same cache dir reads the persisted cache (and the last results).
    await client.app[keys.SCAN].wait()  # both are written by the scan task after scan.finished
    again = await make_client(models_dir=root)
    assert (await (await again.get("/api/duplicates")).json())["groups"] == first["groups"]
    third = await scan_results(again)
    assert third["stats"]["cache_hit_rate"] == 1.0

    # A changed file is hashed again; the rest still comes from the cache.
    changed = root / first["groups"][0]["files"][0]
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 1
    changed.write_bytes(bytes(data))
    fourth = await scan_results(again)
    assert 0 < fourth["stats"]["hashed_bytes"] < first["stats"]["hashed_bytes"]
    assert 0.5 < fourth["stats"]["cache_hit_rate"] < 1.0

    # A file removed from the library leaves the cache with the next finished scan.
    entries = len(again.app[keys.SCAN].cache)
    gone = next(path for g in first["groups"] for path in g["files"] if (root / path).stat().st_nlink == 1)
    (root / gone).unlink()
    await scan_results(again)
    assert again.app[keys.SCAN].cache.lookup(gone, 0, 0, 0) is None
    assert gone not in again.app[keys.SCAN].cache._entries
    assert len(again.app[keys.SCAN].cache) < entries

    cleared = await (await again.post("/api/clear_cache")).json()
    assert cleared["hash_cache"] == "cleared"
    assert (await (await again.get("/api/cache_stats")).json())["hash_cache"] == {"entries": 0}
    fifth = await scan_results(again)
    assert fifth["stats"]["cache_hit_rate"] == 0.0


async def test_missing_root_answers_503_and_clears_nothing(
    tmp_path: Path, make_client: ClientFactory, library_root: Path
) -> None:
    _write(library_root / "alpha" / "ana" / "dup.jpg", (library_root / "alpha" / "ana" / "img1.jpg").read_bytes())
    client = await make_client()
    body = await scan_results(client)
    assert body["groups"]
    entries = len(client.app[keys.SCAN].cache)
    moved = tmp_path / "unmounted"
    library_root.rename(moved)
    response = await client.post("/api/scan")
    assert response.status == 503
    assert "missing" in (await response.json())["message"]
    assert await (await client.get("/api/duplicates")).json() == body
    assert len(client.app[keys.SCAN].cache) == entries

    # Unmounted after the scan was accepted: the scan fails with a clear message.
    moved.rename(library_root)
    service = client.app[keys.SCAN]
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json()
        await service.start()
        library_root.rename(moved)
        event = {"type": ""}
        while event["type"] not in ("scan.finished", "scan.failed", "scan.cancelled"):
            event = await ws.receive_json(timeout=30)
    assert event["type"] == "scan.failed"
    assert "library folder is missing" in event["message"]
    assert await (await client.get("/api/duplicates")).json() == body
    assert len(service.cache) == entries


async def test_duplicates_before_any_scan_is_404(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/duplicates")
    assert response.status == 404
    assert (await response.json())["error"] == "no_scan"


async def test_scan_progress_shape(client: TestClient[Any, Any]) -> None:
    body = await (await client.get("/api/scan_progress")).json()
    for name in ("running", "scan_id", "phase", "checked", "total", "bytes_done", "bytes_total", "percent",
                 "cache_hits", "started_at", "eta_s"):  # fmt: skip
        assert name in body
    assert body["running"] is False
    await scan_results(client)
    body = await (await client.get("/api/scan_progress")).json()
    assert body["phase"] == "done" and body["percent"] == 100


async def test_openapi_documents_the_scan_routes(client: TestClient[Any, Any]) -> None:
    paths = (await (await client.get("/api/openapi.json")).json())["paths"]
    for route, method in (("/api/scan", "post"), ("/api/scan/cancel", "post"), ("/api/scan_progress", "get"),
                          ("/api/duplicates", "get"), ("/api/duplicates/delete", "post"), ("/ws", "get")):  # fmt: skip
        assert method in paths[route], route


async def test_a_dead_worker_fails_the_scan_and_the_next_scan_restarts_the_pool(
    library_root: Path, make_client: ClientFactory
) -> None:
    _write(library_root / "alpha" / "ana" / "dup.jpg", (library_root / "alpha" / "ana" / "img1.jpg").read_bytes())
    client = await make_client()
    service = client.app[keys.SCAN]
    pool = service.pool.executor
    assert isinstance(pool, ProcessPoolExecutor)
    victim: Any = next(iter(pool._processes.values()))  # a real worker process, killed as the OOM killer would
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(10)
    events = await run_scan(client)
    assert events[-1]["type"] == "scan.failed"
    assert "worker" in events[-1]["message"]
    body = await scan_results(client)
    assert [g["files"] for g in body["groups"]] == [["alpha/ana/dup.jpg", "alpha/ana/img1.jpg"]]


async def test_scan_figures_in_metrics(client: TestClient[Any, Any]) -> None:
    await scan_results(client)
    parts = client.app[keys.SCAN].counters.walked_parts
    await scan_results(client)  # nothing changed: the plain parts are kept, the others walked again
    text = await (await client.get("/metrics")).text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("archive_catalog_scans_total", (("outcome", "finished"),))] == 2
    walked = samples[("archive_catalog_scan_walk_parts_total", (("how", "walked"),))]
    kept = samples[("archive_catalog_scan_walk_parts_total", (("how", "kept"),))]
    assert parts > 0 and kept > 0 and walked + kept == 2 * parts
    assert samples[("archive_catalog_hash_cache_entries", ())] == len(client.app[keys.SCAN].cache)
    assert samples[("archive_catalog_scan_hashed_bytes_total", ())] > 0
    assert ("archive_catalog_ws_clients", ()) in samples


def test_groups_are_ordered_by_wasted_bytes_then_their_first_files_natural_order() -> None:
    """`_order_groups` makes natural keys only for ties, yet orders as the plain sort does;
    keys the last results had are used as they are, and the keys made are returned."""
    rng = random.Random(3)
    for _ in range(300):
        groups: list[dict[str, Any]] = [
            {"wasted": rng.choice([5, 10, 10, 20, 7]), "files": [f"s/m{rng.randrange(12)}/img{rng.randrange(30)}.jpg"]}
            for _ in range(rng.randrange(12))
        ]
        expected = sorted(groups, key=lambda group: (-group["wasted"], natural_key(group["files"][0])))
        known = {group["files"][0]: natural_key(group["files"][0]) for group in groups if rng.random() < 0.3}
        used = results_module._order_groups(groups, known)
        assert groups == expected
        tied = {group["files"][0] for group in groups if sum(g["wasted"] == group["wasted"] for g in groups) > 1}
        assert set(used) == tied
        assert all(used[name] == natural_key(name) for name in used)

"""Faults: the server SIGKILLed mid-download, mid-scan and mid-delete, a full disk under the
download cache, the library drive vanishing during a scan, Redis dying mid-run.

Kill tests run a real `python -m server` (tests/server_process.py) and restart it on the same
cache dir; the others run in-process with an injected fault. Every wait is bounded, and the
assertions are about state (what is served, listed, kept), never about speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import io
import os
import random
import signal
import socket
import subprocess
import time
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from server import keys
from server.downloads import service as download_module
from server.downloads import streaming
from server.infra.events import Event
from server.scan.hashcache import FORMAT_VERSION as HASH_CACHE_VERSION

from .conftest import ClientFactory
from .helpers import age_folders, eventually, write
from .redis_support import private_redis
from .server_process import ServerProcess, get_json, start_server, stop_server

MIB = 1024 * 1024


def _kill(server: ServerProcess) -> None:
    """SIGKILL, then reap it at once (its worker processes notice and exit by themselves)."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    server.process.communicate(timeout=30)


def _fetch(url: str, timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def _request(method: str, url: str, timeout: float = 10) -> int:
    request = urllib.request.Request(url, method=method, headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _check_zip(data: bytes, folder: Path, expected: dict[str, bytes]) -> None:
    """A real reader (zipfile) and `unzip -t` accept it, and it holds exactly `expected`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = {name.rpartition("/")[2]: name for name in archive.namelist()}
        assert set(names) == set(expected)
        for short, content in expected.items():
            assert archive.read(names[short]) == content
    path = folder / "check.zip"
    path.write_bytes(data)
    result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode(errors="replace")
    path.unlink()


def _big_model(library: Path, site: str, model: str, files: int, size: int, seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    contents = {}
    for index in range(files):
        data = rng.randbytes(size)
        write(library / site / model / f"{index:03}.jpg", data)
        contents[f"{index:03}.jpg"] = data
    return contents


def _downloads_folder(cache: Path) -> list[str]:
    folder = cache / "downloads"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# -- 1. SIGKILL while streaming a large download --------------------------------------------


def test_kill_during_a_streamed_download_never_serves_a_partial_archive(tmp_path: Path) -> None:
    library, cache = tmp_path / "library", tmp_path / "cache"
    contents = _big_model(library, "site", "big", files=6, size=4 * MIB, seed=1)
    age_folders(library)
    server = start_server(library, cache, "--threshold-mb", "1")
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /api/download?site=site&model=big HTTP/1.1\r\nHost: x\r\n\r\n")
        head = sock.recv(65536)
        assert b" 200 " in head.split(b"\r\n", 1)[0]
        assert b"x-download-strategy: stream" in head.lower()
        deadline = time.monotonic() + 15  # the cache copy is being written beside the stream
        while not any(name.startswith("tmp-") for name in _downloads_folder(cache)):
            assert time.monotonic() < deadline, _downloads_folder(cache)
            time.sleep(0.02)
        _kill(server)
        sock.close()
        assert any(name.startswith("tmp-") for name in _downloads_folder(cache))  # the kill left it

        server = start_server(library, cache, "--threshold-mb", "1")
        left = _downloads_folder(cache)
        assert not [name for name in left if name.startswith("tmp-") or name.endswith((".zip", ".pdf"))], left
        stats = get_json(f"{server.url}/api/cache_stats")["download_cache"]
        assert isinstance(stats, dict) and stats["entries"] == 0  # nothing indexes a partial file

        for _ in range(2):  # streamed (and cached), then from the cache
            status, data = _fetch(f"{server.url}/api/download?site=site&model=big")
            assert status == 200
            _check_zip(data, tmp_path, contents)
    finally:
        output = stop_server(server)
    assert "Traceback" not in output, output


def test_kills_at_random_moments_of_many_downloads_leave_only_whole_indexed_archives(tmp_path: Path) -> None:
    """Many downloads (streamed and buffered) at once, the server killed at a random moment,
    three times: every archive left in the cache is indexed, whole and valid; nothing else is."""
    library, cache = tmp_path / "library", tmp_path / "cache"
    expected = {f"big{i}": _big_model(library, "site", f"big{i}", files=3, size=3 * MIB, seed=10 + i) for i in range(4)}
    for i in range(4):
        expected[f"small{i}"] = _big_model(library, "site", f"small{i}", files=3, size=4096, seed=20 + i)
    age_folders(library)
    rng = random.Random(17)

    async def download_all(server: ServerProcess, kill_after: float) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            async with session.post(f"{server.url}/api/clear_cache") as response:
                assert response.status == 200  # each round builds (and caches) everything again

            async def one(model: str) -> None:
                try:
                    async with session.get(f"{server.url}/api/download?site=site&model={model}") as response:
                        await response.read()
                except aiohttp.ClientError:
                    pass  # killed mid-answer

            tasks = [asyncio.create_task(one(model)) for model in expected for _ in range(2)]
            await eventually(lambda: any(n.startswith("tmp-") for n in _downloads_folder(cache)), within=15)
            await asyncio.sleep(kill_after)  # from then on, at a random moment of the work
            _kill(server)
            await asyncio.gather(*tasks)

    for _ in range(3):
        server = start_server(library, cache, "--threshold-mb", "2")
        asyncio.run(download_all(server, rng.uniform(0.0, 0.06)))

    server = start_server(library, cache, "--threshold-mb", "2")
    try:
        left = _downloads_folder(cache)
        archives = [name for name in left if name.endswith(".zip")]
        assert [name for name in left if name.startswith("tmp-")] == []
        stats = get_json(f"{server.url}/api/cache_stats")["download_cache"]
        assert isinstance(stats, dict) and stats["entries"] == len(archives)  # every file indexed, and only those
        for name in archives:
            with zipfile.ZipFile(cache / "downloads" / name) as archive:
                assert archive.testzip() is None
        for model, contents in expected.items():
            status, data = _fetch(f"{server.url}/api/download?site=site&model={model}")
            assert status == 200
            _check_zip(data, tmp_path, contents)
    finally:
        output = stop_server(server)
    assert "Traceback" not in output, output


# -- 2. SIGKILL while the hash cache is written -----------------------------------------------


def _dup_library(library: Path, pairs: int, size: int) -> None:
    rng = random.Random(7)
    for index in range(pairs):
        data = rng.randbytes(size)
        write(library / "site" / f"m{index % 8}" / f"a{index}.jpg", data)
        write(library / "site" / f"n{index % 8}" / f"b{index}.jpg", data)
    age_folders(library)


def _scan_to_end(server: ServerProcess) -> dict[str, Any]:
    request = urllib.request.Request(f"{server.url}/api/scan", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    deadline = time.monotonic() + 60
    while True:
        progress = get_json(f"{server.url}/api/scan_progress")
        if not progress["running"] and progress["phase"] in ("done", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, progress
        time.sleep(0.05)
    assert progress["phase"] == "done", progress
    return get_json(f"{server.url}/api/duplicates")


def test_kill_during_scans_leaves_a_loadable_hash_cache(tmp_path: Path) -> None:
    library, cache = tmp_path / "library", tmp_path / "cache"
    pairs = 120
    _dup_library(library, pairs, 96 * 1024)
    rng = random.Random(3)
    killed_running = 0
    for round_ in range(4):  # kill at a different moment of a scan (and of its cache save) each time
        server = start_server(library, cache)
        request = urllib.request.Request(f"{server.url}/api/scan", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
        time.sleep(rng.uniform(0.0, 0.4) if round_ else 0.0)
        killed_running += bool(get_json(f"{server.url}/api/scan_progress")["running"])
        _kill(server)
        hashcache = cache / "hashcache.json"
        if hashcache.exists():  # whatever a kill left is a whole document
            document = orjson.loads(hashcache.read_bytes())
            assert document["version"] == HASH_CACHE_VERSION

    assert killed_running >= 1  # at least one kill hit a scan at work

    server = start_server(library, cache)
    try:
        results = _scan_to_end(server)
        assert len(results["groups"]) == pairs
        assert all(len(group["files"]) == 2 for group in results["groups"])
        stats = get_json(f"{server.url}/api/cache_stats")
        assert isinstance(stats["hash_cache"], dict) and stats["hash_cache"]["entries"] == 2 * pairs
        again = _scan_to_end(server)  # the cache saved at the end of the first scan answers now
        assert len(again["groups"]) == pairs
        assert results["stats"]["files"] == again["stats"]["files"] == 2 * pairs
        assert again["stats"]["hashed_bytes"] == 0 and again["stats"]["cache_hit_rate"] == 1.0
        assert not list(cache.glob(".hashcache.json.*.tmp"))
    finally:
        output = stop_server(server)
    assert "Traceback" not in output, output


# -- 3. SIGKILL while moving things to the trash ----------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def _library_state(library: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(original path -> digest of files in place, trash id -> digest of its data file)."""
    in_place: dict[str, str] = {}
    trashed: dict[str, str] = {}
    for path in library.rglob("*"):
        if not path.is_file() or path.name == "meta.json" or path.name.endswith(".tmp"):
            continue
        relative = path.relative_to(library).as_posix()
        if "/.trash/" in relative:
            assert path.name == "data", relative
            trashed[path.parent.name] = _digest(path)
        else:
            in_place[relative] = _digest(path)
    return in_place, trashed


def test_kill_during_deletes_loses_nothing_and_the_trash_list_matches(tmp_path: Path) -> None:
    library, cache = tmp_path / "library", tmp_path / "cache"
    rng = random.Random(11)
    for model in range(6):
        for index in range(12):
            write(library / "site" / f"m{model}" / f"{index}.jpg", rng.randbytes(2048))
    age_folders(library)
    before, _ = _library_state(library)
    everything = sorted(before)

    async def delete_many(server: ServerProcess, paths: list[str], kill_after: float) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

            async def delete(relative: str) -> None:
                site, model, name = relative.split("/")
                url = f"{server.url}/api/file?site={site}&model={model}&path={name}"
                try:
                    async with session.delete(url) as response:
                        await response.read()
                except aiohttp.ClientError:
                    pass  # killed mid-request

            tasks = [asyncio.create_task(delete(p)) for p in paths]
            trash = library / "site" / ".trash"
            await eventually(lambda: trash.is_dir() and any(trash.iterdir()), within=15)  # the moves have begun
            await asyncio.sleep(kill_after)
            _kill(server)
            await asyncio.gather(*tasks)

    cut_short = 0
    for _ in range(3):
        server = start_server(library, cache)
        in_place, _ = _library_state(library)
        asyncio.run(delete_many(server, sorted(in_place), rng.uniform(0.0, 0.02)))
        still, _ = _library_state(library)
        cut_short += 0 < len(still) < len(in_place)  # the kill fell among the deletes
    assert cut_short >= 1

    server = start_server(library, cache)
    try:
        in_place, trashed = _library_state(library)
        listing = get_json(f"{server.url}/api/trash")
        items = listing["items"]
        assert isinstance(items, list)
        assert {item["id"] for item in items} == set(trashed)  # listed == holds data
        leftovers = [d for d in library.glob("site/.trash/*") if not (d / "data").exists()]
        assert leftovers == []  # interrupted moves were cleaned at start
        for item in items:  # every listed item says truly where its data came from
            assert item["original"] not in in_place
            assert before[item["original"]] == trashed[item["id"]]
        # nothing lost: every file is in place or in the trash, exactly once
        assert sorted([*in_place.values(), *trashed.values()]) == sorted(before.values())
        assert set(in_place) | {item["original"] for item in items} == set(everything)

        for item in items:
            status = _request("POST", f"{server.url}/api/trash/restore?id={item['id']}")
            assert status == 200, item
        after, trashed_after = _library_state(library)
        assert after == before
        assert trashed_after == {}
        assert get_json(f"{server.url}/api/trash")["items"] == []
    finally:
        output = stop_server(server)
    assert "Traceback" not in output, output


async def test_the_server_removes_interrupted_trash_items_at_start(
    make_client: ClientFactory, library_root: Path
) -> None:
    """What a kill between writing an item's metadata and moving its data leaves behind."""
    interrupted = library_root / "alpha" / ".trash" / "0123456789ab-89abcdef"
    interrupted.mkdir(parents=True)
    (interrupted / "meta.json").write_text("{}")
    (interrupted / ".meta.json.0a1b2c3d.tmp").write_text("{")
    client = await make_client()
    assert not interrupted.exists()
    assert (await (await client.get("/api/trash")).json())["items"] == []


# -- 4. disk full while writing the download cache --------------------------------------------


def _no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


async def _cache_is_clean(client: Any) -> None:
    await client.app[keys.DOWNLOADS].idle()
    folder = Path(client.app[keys.CONFIG].cache_dir) / "downloads"
    names = sorted(p.name for p in folder.iterdir())
    assert [n for n in names if n.startswith("tmp-") or n.endswith((".zip", ".pdf"))] == [], names
    stats = await (await client.get("/api/cache_stats")).json()
    assert stats["download_cache"]["entries"] == 0


async def test_disk_full_while_a_stream_writes_its_cache_copy(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = _big_model(library_root, "alpha", "big", files=3, size=MIB, seed=2)
    real_write_plan = streaming.write_plan  # the service calls it by this name

    def full_disk(plan: Any, temp: Path, *args: Any) -> None:
        with open(temp, "wb") as handle:  # a part lands on disk, then the disk is full
            handle.write(b"\0" * 4096)
        raise _no_space()

    monkeypatch.setattr(download_module, "write_plan", full_disk)
    client = await make_client(threshold_mb=1)
    response = await client.get("/api/download?site=alpha&model=big")
    assert response.status == 200
    assert response.headers["X-Download-Strategy"] == "stream"
    _check_zip(await response.read(), tmp_path, contents)
    await _cache_is_clean(client)

    monkeypatch.setattr(download_module, "write_plan", real_write_plan)  # space again: cached as usual
    response = await client.get("/api/download?site=alpha&model=big")
    _check_zip(await response.read(), tmp_path, contents)
    await client.app[keys.DOWNLOADS].idle()
    assert (await (await client.get("/api/cache_stats")).json())["download_cache"]["entries"] == 1


async def test_disk_full_while_a_buffered_archive_is_stored(
    make_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_bytes = Path.write_bytes

    def full_disk(self: Path, data: Any) -> int:
        if self.name.startswith("tmp-"):
            real_write_bytes(self, bytes(data)[: len(data) // 2])
            raise _no_space()
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    client = await make_client()
    response = await client.get("/api/download?site=alpha&model=bruno")
    assert response.status == 200
    assert response.headers["X-Download-Strategy"] == "buffer"
    with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
        assert archive.testzip() is None
        assert sorted(n.rpartition("/")[2] for n in archive.namelist()) == ["a.jpg", "b.webp"]
    await _cache_is_clean(client)


async def test_disk_full_for_a_pdf_spool_is_a_clean_json_error(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PDF is planned through a spool file in the cache dir: no room there is a JSON 5xx/4xx
    before the response starts, never a truncated PDF."""

    def no_room(*args: Any, **kwargs: Any) -> Any:
        raise _no_space()

    monkeypatch.setattr(download_module, "pdf_archive_plan", no_room)
    client = await make_client()
    response = await client.get("/api/download?site=alpha&model=ana&format=pdf")
    assert response.status in (503, 507)
    body = await response.json()
    assert set(body) >= {"error", "message"}
    assert "Traceback" not in body["message"] and str(client.app[keys.CONFIG].cache_dir) not in body["message"]
    await _cache_is_clean(client)


async def test_a_real_full_disk_under_the_download_cache(
    make_client: ClientFactory, library_root: Path, tmp_path: Path
) -> None:
    """The cache dir on a 4 MiB tmpfs (needs root; skipped where mounting is refused — the
    injected-ENOSPC tests above still run): real ENOSPC from the kernel, same promises."""
    small = tmp_path / "small-disk"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        contents = _big_model(library_root, "alpha", "big", files=3, size=2 * MIB, seed=4)  # 6 MB > 4 MiB
        client = await make_client(cache_dir=small / "cache", threshold_mb=1)
        try:
            response = await client.get("/api/download?site=alpha&model=big")
            assert response.status == 200
            assert response.headers["X-Download-Strategy"] == "stream"
            _check_zip(await response.read(), tmp_path, contents)
            await _cache_is_clean(client)

            # now fill the disk to the last byte
            with contextlib.suppress(OSError), open(small / "filler", "wb", buffering=0) as filler:
                while True:
                    filler.write(b"\0" * 65536)
            response = await client.get("/api/download?site=alpha&model=bruno")
            assert response.status == 200
            assert response.headers["X-Download-Strategy"] == "buffer"
            with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
                assert archive.testzip() is None
            await _cache_is_clean(client)

            response = await client.get("/api/download?site=alpha&model=ana&format=pdf")
            if response.status == 200:  # no spool needed: a whole PDF
                data = await response.read()
                assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
            else:
                assert response.status == 503
                assert (await response.json())["error"] == "disk_full"
            await _cache_is_clean(client)
        finally:
            await client.close()
    finally:
        subprocess.run(["umount", "-l", str(small)], check=True)


# -- 5. the library root vanishes during a scan ---------------------------------------------


@pytest.mark.parametrize("moment", ["scan.started", "hashing"])
async def test_library_unmounted_during_a_scan_fails_cleanly_and_keeps_the_cache(
    make_client: ClientFactory, library_root: Path, moment: str
) -> None:
    rng = random.Random(5)
    for index in range(60):
        data = rng.randbytes(256 * 1024)
        write(library_root / "gamma" / "x" / f"{index}.jpg", data)
        write(library_root / "gamma" / "y" / f"{index}.jpg", data)
    client = await make_client()
    service = client.app[keys.SCAN]
    events: list[dict[str, Any]] = []
    client.app[keys.EVENTS].subscribe(lambda event: events.append(event.to_json()))

    assert (await client.post("/api/scan")).status == 202
    await service.wait()
    first = await (await client.get("/api/duplicates")).json()
    assert len(first["groups"]) == 60
    cached = len(service.cache)
    assert cached > 0
    saved = (client.app[keys.CONFIG].cache_dir / "hashcache.json").read_bytes()

    for index in range(20):  # new files the cache does not know: the workers must read them
        data = rng.randbytes(512 * 1024)
        write(library_root / "gamma" / "z" / f"{index}.jpg", data)
        write(library_root / "gamma" / "w" / f"{index}.jpg", data)
    moved = library_root.with_name("unmounted")

    def unmount(published: Event) -> None:
        event = published.to_json()
        if library_root.exists() and (
            event["type"] == moment or (event["type"] == "scan.progress" and event.get("phase") == moment)
        ):
            library_root.rename(moved)

    unsubscribe = client.app[keys.EVENTS].subscribe(unmount)
    events.clear()
    assert (await client.post("/api/scan")).status == 202
    async with asyncio.timeout(60):
        await service.wait()
    unsubscribe()
    assert not library_root.exists()
    ends = [e for e in events if e["type"] in ("scan.finished", "scan.failed", "scan.cancelled")]
    assert [e["type"] for e in ends] == ["scan.failed"], ends
    assert "mounted" in ends[0]["message"]

    response = await client.post("/api/scan")
    assert response.status == 503
    assert (await response.json())["error"] == "library_unavailable"
    assert (await (await client.get("/api/duplicates")).json())["groups"] == first["groups"]
    assert len(service.cache) == cached
    assert (client.app[keys.CONFIG].cache_dir / "hashcache.json").read_bytes() == saved

    moved.rename(library_root)  # the drive is back: the cache still knows every file
    assert (await client.post("/api/scan")).status == 202
    await service.wait()
    progress = await (await client.get("/api/scan_progress")).json()
    assert progress["phase"] == "done"
    assert progress["cache_hits"] >= 120
    assert len((await (await client.get("/api/duplicates")).json())["groups"]) == 80


# -- 6. Redis killed and restarted during downloads and scans ----------------------------------


async def test_redis_killed_and_restarted_during_downloads_and_scans(
    make_client: ClientFactory, library_root: Path, tmp_path: Path
) -> None:
    contents = _big_model(library_root, "alpha", "big", files=3, size=MIB, seed=3)
    with private_redis(tmp_path) as redis_server:
        client = await make_client(redis_url=redis_server.url, threshold_mb=1)

        async def redis_state() -> str:
            return str((await (await client.get("/healthz")).json())["redis"])

        await eventually(lambda: _is(redis_state(), "ok"), within=15)

        async def one_round() -> None:
            big = await client.get("/api/download?site=alpha&model=big")
            assert big.status == 200
            _check_zip(await big.read(), tmp_path, contents)
            small = await client.get("/api/download?site=alpha&model=bruno")
            assert small.status == 200
            with zipfile.ZipFile(io.BytesIO(await small.read())) as archive:
                assert archive.testzip() is None
            models = await client.get("/api/models?site=alpha")
            assert models.status == 200
            scan = await client.post("/api/scan")
            assert scan.status in (202, 409), await scan.text()
            await client.app[keys.SCAN].wait()
            assert (await (await client.get("/api/scan_progress")).json())["phase"] == "done"

        async def killed_during(action: Callable[[], None]) -> None:
            """A round with Redis killed (or started) while its first download is under way."""
            work = asyncio.create_task(one_round())
            await asyncio.sleep(0.01)
            action()
            async with asyncio.timeout(60):
                await work

        await one_round()
        await client.post("/api/clear_cache")
        await killed_during(redis_server.kill)
        await eventually(lambda: _is(redis_state(), "down"), within=15)
        await one_round()
        await client.post("/api/clear_cache")
        await killed_during(redis_server.start)  # same port
        await eventually(lambda: _is(redis_state(), "ok"), within=15)
        await one_round()
        stats = await (await client.get("/api/cache_stats")).json()
        assert stats["download_cache"]["index"] == "redis"


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)


# -- 7 lives in test_load.py; 8 (routes that touch the disk under attack) in test_attacks.py --

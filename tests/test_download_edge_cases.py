"""Downloads of real, awkward archives: empty files, files the server cannot read, long names.

Every archive is checked by real readers (`zipfile` + `unzip -t`, pypdf), in each strategy
(buffer, stream, cache hit). Unreadable files are real: the server runs as its own process
without the capabilities that let root read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH),
so a `chmod 000` file is as unreadable to it as to any unprivileged server.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pypdf
import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.archives.plans import render_bytes
from server.archives.zips import file_entry, zip_plan
from server.downloads.selection import fit_name
from server.downloads.streaming import plan_slice

from .conftest import ClientFactory
from .helpers import jpeg_bytes, make_model, write
from .http_support import check_zip, get, settle
from .server_process import ServerProcess, start_server, stop_server

MIB = 1024 * 1024


def zip_members(data: bytes, tmp_path: Path) -> dict[str, bytes]:
    archive = check_zip(data, tmp_path)
    return {name: archive.read(name) for name in archive.namelist()}


def pdf_pages(data: bytes) -> int:
    return len(pypdf.PdfReader(io.BytesIO(data)).pages)


# -- an empty media file ------------------------------------------------------------------


@pytest.fixture
def with_empty_files(library_root: Path) -> dict[str, bytes]:
    """alpha/gaps: two images, an empty image and an empty video, and one real video."""
    folder = make_model(library_root, "alpha", "gaps", ["a.jpg", "b.jpg"], seed=40)
    write(folder / "empty.jpg", b"", mtime=1_700_000_100)
    write(folder / "empty.mp4", b"", mtime=1_700_000_101)
    write(folder / "clip.mp4", os.urandom(64 * 1024), mtime=1_700_000_102)
    return {f"gaps/{p.name}": p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize(("threshold_mb", "strategy"), [(100, "buffer"), (0, "stream")])
async def test_an_empty_file_is_a_valid_empty_zip_entry_in_every_strategy(
    make_client: ClientFactory, with_empty_files: dict[str, bytes], tmp_path: Path, threshold_mb: int, strategy: str
) -> None:
    client = await make_client(threshold_mb=threshold_mb)
    for expected_strategy in (strategy, "cache"):
        status, headers, body = await get(client, "/api/download?site=alpha&model=gaps")
        assert status == 200, body[:200]
        assert headers["X-Download-Strategy"] == expected_strategy
        assert int(headers["Content-Length"]) == len(body)
        assert zip_members(body, tmp_path) == with_empty_files
        await settle(client)


@pytest.mark.parametrize("threshold_mb", [100, 0])
async def test_pdfs_leave_an_empty_image_out(
    make_client: ClientFactory, with_empty_files: dict[str, bytes], tmp_path: Path, threshold_mb: int
) -> None:
    client = await make_client(threshold_mb=threshold_mb)
    status, _, body = await get(client, "/api/download?site=alpha&model=gaps&format=pdf")
    assert status == 200 and pdf_pages(body) == 2
    status, _, body = await get(client, "/api/download?site=alpha&model=gaps&format=pdfs-zip")
    assert status == 200
    assert pdf_pages(zip_members(body, tmp_path)["gaps.pdf"]) == 2
    await settle(client)


# -- a file the server cannot read --------------------------------------------------------

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def _without_file_read_override() -> None:
    """In the child before exec: drop the capabilities that let root read any file; the
    exec'd server then runs as root without them, so file modes bind it."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def start_unprivileged_server(library: Path, cache: Path, *args: str) -> ServerProcess:
    """Our server, as root but without the capabilities that let root read any file."""
    return start_server(library, cache, *args, preexec_fn=_without_file_read_override if os.geteuid() == 0 else None)


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """A whole response; a connection cut short raises (IncompleteRead), never passes."""
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, dict(response.headers), response.read()


@pytest.fixture
def unreadable_library(tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, dict[str, bytes]]]]:
    """Two models, each with images and a video, some of them unreadable (mode 000): `small`
    is built in memory, `big` (past the 1 MB threshold) streamed. Yields the server and, per
    model, the readable files an archive must hold."""
    library = tmp_path / "library"
    readable: dict[str, dict[str, bytes]] = {}
    for model, padding in (("small", 0), ("big", 2 * MIB)):
        folder = make_model(library, "site", model, ["a.jpg", "b.jpg", "c.jpg"], seed=50)
        write(folder / "clip.mp4", os.urandom(padding or 4096), mtime=1_700_000_200)
        write(folder / "locked.mp4", os.urandom(4096), mtime=1_700_000_201)
        if padding:  # a big image too, so the PDFs of `big` are streamed as well
            write(folder / "d.jpg", jpeg_bytes(60) + b"\0" * padding, mtime=1_700_000_202)
        os.chmod(folder / "b.jpg", 0)
        os.chmod(folder / "locked.mp4", 0)
        readable[model] = {f"{model}/{p.name}": p.read_bytes() for p in folder.iterdir() if p.stat().st_mode & 0o444}
    server = start_unprivileged_server(library, tmp_path / "cache", "--threshold-mb", "1")
    try:
        yield server, readable
    finally:
        output = stop_server(server)
        assert "Left out of the archive (cannot be read" in output, output  # the case was real


@pytest.mark.parametrize(("model", "strategy"), [("small", "buffer"), ("big", "stream")])
def test_unreadable_files_are_left_out_of_every_format(
    unreadable_library: tuple[ServerProcess, dict[str, dict[str, bytes]]], tmp_path: Path, model: str, strategy: str
) -> None:
    server, readable = unreadable_library
    images = sum(1 for name in readable[model] if name.endswith(".jpg"))
    for fmt in ("zip", "pdf", "pdfs-zip"):
        url = f"{server.url}/api/download?site=site&model={model}&format={fmt}"
        for expected_strategy in (strategy, "cache"):
            status, headers, body = fetch(url)
            assert status == 200
            assert headers["X-Download-Strategy"] == expected_strategy
            assert int(headers["Content-Length"]) == len(body)
            if fmt == "zip":
                assert zip_members(body, tmp_path) == readable[model]
            elif fmt == "pdf":
                assert pdf_pages(body) == images
            else:
                assert pdf_pages(zip_members(body, tmp_path)[f"{model}.pdf"]) == images
            _wait_until_cached(server, url)


def _wait_until_cached(server: ServerProcess, url: str) -> None:
    """The cache copy is finished after the response (behaviour, not timing: poll HEAD)."""
    for _ in range(600):
        request = urllib.request.Request(url, method="HEAD", headers={"Connection": "close"})
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.headers["X-Cache"] == "HIT":
                return
        time.sleep(0.05)
    raise AssertionError(f"never cached: {url}")


# -- a long name --------------------------------------------------------------------------


def test_fit_name_keeps_the_ending_and_cuts_at_a_character() -> None:
    assert fit_name("short", ".zip") == "short.zip"
    assert fit_name("c" * 300, ".zip", mark="...") == "c" * 248 + "....zip"
    exact = "a" * 251
    assert fit_name(exact, ".zip") == exact + ".zip"
    for stem in ("b" * 300, "é" * 200, "x" + "😀" * 100, "site — " + "名" * 120):
        name = fit_name(stem, " (PDFs).zip")
        assert len(name.encode()) <= 255
        assert name.endswith("… (PDFs).zip")
        assert stem.startswith(name.removesuffix("… (PDFs).zip"))


def _disposition_names(header: str) -> tuple[str, str]:
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    exact = unquote(header.split("filename*=UTF-8''", 1)[1], encoding="utf-8", errors="strict")
    return fallback, exact


@pytest.mark.parametrize(
    ("model", "fmt", "ending"),
    [
        ("m" * 255, "zip", ".zip"),
        ("é" * 127, "pdf", ".pdf"),
        ("㎯" * 85, "pdfs-zip", ".zip"),  # each becomes "rad∕s2": its ASCII form is longer
    ],
)
async def test_download_names_fit_a_file_system_name(
    make_client: ClientFactory, library_root: Path, model: str, fmt: str, ending: str
) -> None:
    make_model(library_root, "alpha", model, ["x.jpg"])
    client: TestClient[Any, Any] = await make_client()
    status, headers, body = await get(client, f"/api/download?site=alpha&model={model}&format={fmt}")
    assert status == 200, body[:200]
    fallback, exact = _disposition_names(headers["Content-Disposition"])
    for name in (fallback, exact):
        assert len(name.encode()) <= 255, name
        assert name.endswith(ending)
    assert exact.startswith("alpha — " + model[:20])
    assert fallback.isascii() and fallback.startswith("alpha - ")
    await settle(client)


# -- parallel segments of one uncached streamed archive (aria2c -x 8) -----------------------


def segments(size: int, count: int) -> list[tuple[int, int]]:
    step = -(-size // count)
    return [(first, min(first + step, size) - 1) for first in range(0, size, step)]


async def test_parallel_ranges_of_an_uncached_stream_get_only_their_bytes(
    make_client: ClientFactory, library_root: Path, tmp_path: Path
) -> None:
    folder = make_model(library_root, "alpha", "segments", ["a.jpg", "b.jpg"], seed=70)
    write(folder / "clip.mp4", os.urandom(3 * MIB), mtime=1_700_000_300)
    write(folder / "empty.mp4", b"", mtime=1_700_000_301)
    expected = {f"segments/{p.name}": p.read_bytes() for p in folder.iterdir()}
    client = await make_client(threshold_mb=0)
    url = "/api/download?site=alpha&model=segments"
    head = await client.head(url)
    assert head.headers["Accept-Ranges"] == "bytes" and head.headers["X-Download-Strategy"] == "stream"
    size, etag = int(head.headers["Content-Length"]), head.headers["ETag"]

    async def segment(first: int, last: int) -> bytes:
        status, headers, body = await get(client, url, headers={"Range": f"bytes={first}-{last}", "If-Range": etag})
        assert status == 206, body[:200]
        assert headers["X-Download-Strategy"] == "stream"
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert len(body) == int(headers["Content-Length"]) == last - first + 1
        return body

    parts = await asyncio.gather(*(segment(first, last) for first, last in segments(size, 8)))
    assert zip_members(b"".join(parts), tmp_path) == expected
    await settle(client)
    assert (await client.app[keys.DOWNLOADS].store.index.totals()) == (0, 0)  # a segment is not an archive

    status, headers, body = await get(client, url, headers={"Range": "bytes=0-99", "If-Range": '"another"'})
    assert status == 200 and headers["X-Download-Strategy"] == "stream"  # If-Range fails: the whole archive
    assert body == b"".join(parts)
    await settle(client)


def test_a_plan_slice_renders_exactly_those_bytes_of_the_archive(tmp_path: Path) -> None:
    names = {"a.bin": os.urandom(300), "empty.bin": b"", "b.bin": os.urandom(50)}
    plan = zip_plan([file_entry(name, str(write(tmp_path / name, data))) for name, data in names.items()])
    whole = bytes(render_bytes(plan))
    for start in range(0, plan.size, 7):
        for stop in range(start + 1, plan.size + 1, 11):
            part = plan_slice(plan, start, stop)
            assert part.size == stop - start
            assert bytes(render_bytes(part)) == whole[start:stop], (start, stop)

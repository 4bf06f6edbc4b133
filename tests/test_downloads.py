"""GET /api/download through the real app: real readers check every archive."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pypdf
import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.config import Config
from server.downloads import DownloadService

from .conftest import ClientFactory
from .helpers import jpeg_bytes, make_model, write

ANA = ["img1.jpg", "img2.jpg", "IMG3.PNG", "img10.jpg", "clip.mp4"]


def service_of(client: TestClient[Any, Any]) -> DownloadService:
    return client.app[keys.DOWNLOADS]


async def settle(client: TestClient[Any, Any]) -> None:
    """Wait for background cache saves and in-flight builds (behaviour, not timing)."""
    service = service_of(client)
    for _ in range(500):
        await service.idle()
        if not service.store.temp_files():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"temp files remain: {service.store.temp_files()}")


def check_zip(data: bytes, tmp_path: Path) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    path = tmp_path / "check.zip"
    path.write_bytes(data)
    result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return archive


async def get(client: TestClient[Any, Any], url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    response = await client.get(url, **kwargs)
    body = await response.read()
    return response.status, dict(response.headers), body


@pytest.mark.parametrize("threshold_mb", [100, 0])
async def test_zip_of_one_model(
    make_client: ClientFactory, library_root: Path, tmp_path: Path, threshold_mb: int
) -> None:
    client = await make_client(threshold_mb=threshold_mb)
    status, headers, body = await get(client, "/api/download?site=alpha&model=ana&format=zip")
    assert status == 200
    assert headers["Content-Type"] == "application/zip"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["X-Cache"] == "MISS"
    assert headers["X-Download-Strategy"] == ("buffer" if threshold_mb else "stream")
    archive = check_zip(body, tmp_path)
    assert archive.namelist() == [f"ana/{n}" for n in ANA]
    for name in ANA:
        assert archive.read(f"ana/{name}") == (library_root / "alpha" / "ana" / name).read_bytes()
    await settle(client)

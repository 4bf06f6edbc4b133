"""Shared fixtures: a real library in tmp_path and an app client built from a test Config."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import Config

from .helpers import make_library

# A test client of our app: `client.app[keys.X]` is typed.
Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
def library_root(tmp_path: Path) -> Path:
    return make_library(tmp_path / "library")


@pytest.fixture
def make_config(tmp_path: Path, library_root: Path) -> Callable[..., Config]:
    def build(**overrides: Any) -> Config:
        values: dict[str, Any] = {
            "models_dir": library_root,
            "cache_dir": tmp_path / "cache",
            "watch_interval_s": 0.05,
        }
        values.update(overrides)
        return Config(**values)

    return build


@pytest.fixture
def make_client(aiohttp_client: Any, make_config: Callable[..., Config]) -> ClientFactory:
    """Build an app from Config overrides and return a test client for it."""

    async def build(**overrides: Any) -> Client:
        app: web.Application = create_app(make_config(**overrides))
        client: Client = await aiohttp_client(app)
        return client

    return build


@pytest.fixture
async def client(make_client: ClientFactory) -> Client:
    return await make_client()

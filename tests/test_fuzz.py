"""schemathesis against our own OpenAPI document: no 5xx, every response matches the document.

A bounded number of examples per operation, against a real server process serving a
throwaway library (the generated deletes and trash-emptying may touch it freely).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from server.web.openapi import load_document

from .helpers import make_library
from .server_process import running_server

schema = schemathesis.openapi.from_dict(load_document())


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("fuzz")
    with running_server(make_library(folder / "library"), folder / "cache") as server:
        yield server.url


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_api_matches_its_document(case: schemathesis.Case[Any], server_url: str) -> None:
    case.call_and_validate(base_url=server_url)

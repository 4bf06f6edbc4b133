"""/metrics: Prometheus text that prometheus-client's own parser reads, with figures that move."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server import keys


async def _samples(client: TestClient[Any, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_cache_counters_move(client: TestClient[Any, Any]) -> None:
    before = await _samples(client)
    for _ in range(3):
        await client.get("/api/models?site=alpha")
    after = await _samples(client)
    key = ("archive_catalog_cache_hits_total", (("cache", "models_cache"),))
    assert after[key] >= before.get(key, 0) + 2
    assert after[("archive_catalog_cache_entries", (("cache", "models_cache"),))] >= 1
    walks = ("archive_catalog_site_walks_total", ())
    assert after[walks] == before.get(walks, 0) + 1  # one walk, then the cached listing


async def test_requests_are_counted_per_route_and_status(client: TestClient[Any, Any]) -> None:
    await client.get("/api/models?site=alpha")
    await client.get("/api/models?site=nope")
    await client.get("/no/such/route")
    samples = await _samples(client)
    ok = ("archive_catalog_http_requests_total", (("method", "GET"), ("route", "/api/models"), ("status", "200")))
    missing = ("archive_catalog_http_requests_total", (("method", "GET"), ("route", "/api/models"), ("status", "404")))
    unmatched = ("archive_catalog_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))
    assert samples[ok] == 1 and samples[missing] == 1 and samples[unmatched] == 1
    count = ("archive_catalog_http_request_duration_seconds_count", (("method", "GET"), ("route", "/api/models")))
    assert samples[count] == 2
    assert (
        "archive_catalog_http_request_duration_seconds_bucket",
        (("le", "+Inf"), ("method", "GET"), ("route", "/api/models")),
    ) in samples


async def test_library_up_follows_the_library_folder(client: TestClient[Any, Any], library_root: Path) -> None:
    watcher = client.app[keys.WATCHER]
    assert (await _samples(client))[("archive_catalog_library_up", ())] == 1
    unmounted = library_root.rename(library_root.with_name("unmounted"))
    await watcher.sweep()
    assert (await _samples(client))[("archive_catalog_library_up", ())] == 0
    unmounted.rename(library_root)
    await watcher.sweep()
    assert (await _samples(client))[("archive_catalog_library_up", ())] == 1

"""/metrics: Prometheus text that prometheus-client's own parser reads, with figures that move."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families


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

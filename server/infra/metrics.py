"""Prometheus metrics: cheap recording on the hot path, exposition through prometheus-client.

Request counts and latencies are recorded in plain dicts (a few hundred nanoseconds per
request) and turned into metric families only when `/metrics` is scraped. Cache figures,
Redis state and anything else that already exists as state are read at scrape time through
*gauges from callbacks*; capabilities register counters and histograms of their own on the
app's registry (`metrics.registry`), never on the process-global one, so several apps (tests,
workers) never share numbers.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PREFIX = "archive_catalog"

Source = Callable[[], Iterable[tuple[dict[str, str], float]]]
FamilyKind = type[GaugeMetricFamily | CounterMetricFamily]


@dataclass(slots=True)
class _Latency:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0


class RequestMetrics(Collector):
    """Requests by route, method and status, with a latency histogram per route and method."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], _Latency] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        latency = self._latency.get((route, method))
        if latency is None:
            latency = self._latency[(route, method)] = _Latency()
        latency.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency.total += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}_http_requests", "HTTP requests answered", labels=("route", "method", "status")
        )
        for (route, method, status), count in sorted(self._counts.items()):
            requests.add_metric((route, method, str(status)), count)
        yield requests
        durations = HistogramMetricFamily(
            f"{PREFIX}_http_request_duration_seconds", "Time to answer HTTP requests", labels=("route", "method")
        )
        for (route, method), latency in sorted(self._latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), latency.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            durations.add_metric((route, method), buckets, latency.total)
        yield durations


class _Callbacks(Collector):
    """Metric families whose samples are read from existing state at scrape time."""

    def __init__(self) -> None:
        self._sources: list[tuple[FamilyKind, str, str, tuple[str, ...], Source]] = []

    def add(
        self,
        kind: FamilyKind,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        source: Source,
    ) -> None:
        self._sources.append((kind, name, documentation, labels, source))

    def collect(self) -> Iterator[Metric]:
        for kind, name, documentation, labels, source in self._sources:
            family = kind(f"{PREFIX}_{name}", documentation, labels=labels)
            for label_values, value in source():
                family.add_metric([label_values[label] for label in labels], value)
            yield family


class Metrics:
    """The app's registry plus the helpers capabilities use to add their own figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = RequestMetrics()
        self._callbacks = _Callbacks()
        self.registry.register(self.requests)
        self.registry.register(self._callbacks)

    def gauge_from(self, name: str, documentation: str, labels: tuple[str, ...], source: Source) -> None:
        """A gauge whose samples `source` reads from existing state at scrape time."""
        self._callbacks.add(GaugeMetricFamily, name, documentation, labels, source)

    def counter_from(self, name: str, documentation: str, labels: tuple[str, ...], source: Source) -> None:
        """A counter kept elsewhere (e.g. cache hits), read at scrape time."""
        self._callbacks.add(CounterMetricFamily, name, documentation, labels, source)

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(f"{PREFIX}_{name}", documentation, labels, registry=self.registry)

    def histogram(
        self, name: str, documentation: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
    ) -> Histogram:
        return Histogram(f"{PREFIX}_{name}", documentation, labels, registry=self.registry, buckets=buckets)

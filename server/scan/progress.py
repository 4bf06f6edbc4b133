"""A scan's live progress (the `scan_progress` body) and its throttled `scan.progress` events.

One meaning per figure, whatever the phase and whichever way it is read (/ws, /api/scan_progress,
after a reload):
- `kind`: the scan's kind, `exact` (duplicates) or `similar` (similar images); null before any;
- `files_found`: media files the walk found (hard links and symlinks to one file counted once
  when the walk ends; the finished results' `stats.files` is the same number);
- `checked` / `total`: the files the work phase handles, done / to do: in an exact scan's
  `hashing` phase the files compared by content (those that share their size with another),
  in a similar scan's `similar` phase the images; `total` is null (unknown) until the walk
  ends, `checked` 0 until then; `bytes_done` / `bytes_total`: those files' bytes;
- `cache_hits`: files among those whose hashes all came from the (hash or perceptual) cache
  (never more than `checked`); `hash_cache_hits`: hashes taken from the cache (an exact scan's
  file can need two: partial and full; an image needs one).

A scan updates its `Progress` far more often than anyone needs to hear about it: the
`ProgressEmitter` publishes at most one event per interval, unless forced (a phase change,
the end). Pure: no aiohttp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.infra.events import Event, ScanProgress

PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress events per second

Publish = Callable[[Event], None]
Clock = Callable[[], float]


@dataclass(slots=True)
class Progress:
    running: bool = False
    scan_id: str | None = None
    kind: str | None = None  # "exact" | "similar"; None before any scan
    phase: str = "idle"
    files_found: int = 0
    checked: int = 0
    total: int | None = None  # unknown until the walk has ended
    bytes_done: int = 0
    bytes_total: int = 0
    percent: float = 0.0
    cache_hits: int = 0
    hash_cache_hits: int = 0
    started_at: float | None = None
    eta_s: float | None = None
    rate: float | None = None  # bytes per second hashed by the workers

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "scan_id": self.scan_id,
            "kind": self.kind,
            "phase": self.phase,
            "files_found": self.files_found,
            "checked": self.checked,
            "total": self.total,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "percent": round(self.percent, 2),
            "cache_hits": self.cache_hits,
            "hash_cache_hits": self.hash_cache_hits,
            "started_at": self.started_at,
            "eta_s": None if self.eta_s is None else round(self.eta_s, 2),
            "rate": None if self.rate is None else round(self.rate),
        }


class ProgressEmitter:
    """Publishes `scan.progress` at most once per `interval_s`, unless forced."""

    def __init__(self, publish: Publish, library_id: str, clock: Clock, interval_s: float) -> None:
        self._publish = publish
        self._library_id = library_id
        self._clock = clock
        self._interval_s = interval_s
        self._last = float("-inf")

    def emit(self, progress: Progress, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last < self._interval_s:
            return
        self._last = now
        self._publish(ScanProgress(library=self._library_id, progress=progress.to_json()))

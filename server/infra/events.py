"""Every event the app publishes, as a typed value, and the in-process bus that carries them.

Who publishes each kind, and who reacts (the subscriptions are all in `server.app`):
- `LibraryChanged`: deletes and restores (handlers.manage) and duplicate deletes (ScanService)
  -> Catalog.invalidate, DownloadService.on_library_changed, the WebSocket hub, the Redis relay.
- `ScanStarted`, `ScanProgress` (at most ~10 a second), `ScanFinished`, `ScanFailed`,
  `ScanCancelled`: the ScanService of the instance that scans, each naming the scan's `kind`
  (`exact`: duplicates, `similar`: similar images; in `ScanProgress`, inside its body)
  -> the hub, the relay, and other instances' ScanService (which mirror the remote scan).
- `ScanCancelRequest`: ScanService.cancel on an instance that does not run the scan itself
  -> the relay, then the scanning instance's ScanService (never sent to browsers).

Events from another instance arrive through the relay with `origin` set to that instance's id;
locally published ones have `origin=None`. `to_json()` is the wire shape (WebSocket frames and
the Redis channel): the contract's fields plus `"type"` (the class's `type_name`). Publishing is synchronous and never
raises because of a subscriber. Pure: no aiohttp.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

log = logging.getLogger("archive_catalog")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """An event; `type_name` is its wire name, `origin` the instance it came from (None: this one)."""

    type_name: ClassVar[str] = ""
    origin: str | None = None

    def to_json(self) -> dict[str, Any]:
        body = {"type": self.type_name}
        for item in dataclasses.fields(self):
            if item.name != "origin":
                body[item.name] = getattr(self, item.name)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class LibraryChanged(Event):
    type_name: ClassVar[str] = "library.changed"
    site: str
    model: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanEvent(Event):
    """An event of the duplicate scan of one library (`library`: its id, shared by instances)."""

    library: str


SCAN_KINDS = ("exact", "similar")  # exact: byte-identical duplicates; similar: similar images


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanRunEvent(ScanEvent):
    """An event of one scan run (`kind`: one of SCAN_KINDS; exact from instances that predate it)."""

    scan_id: str
    kind: str = "exact"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanStarted(ScanRunEvent):
    type_name: ClassVar[str] = "scan.started"
    total: int | None = None  # unknown until the walk ends, as in scan_progress


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanProgress(ScanEvent):
    """The scan_progress body (`progress`), flattened into the frame."""

    type_name: ClassVar[str] = "scan.progress"
    progress: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_name, **self.progress, "library": self.library}


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanFinished(ScanRunEvent):
    type_name: ClassVar[str] = "scan.finished"
    groups: int
    total_wasted: int
    stats: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanFailed(ScanRunEvent):
    type_name: ClassVar[str] = "scan.failed"
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanCancelled(ScanRunEvent):
    type_name: ClassVar[str] = "scan.cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanCancelRequest(ScanEvent):
    """Asks the instance running the library's scan to cancel it (never sent to browsers)."""

    type_name: ClassVar[str] = "cluster.scan_cancel"


BROWSER_EVENTS: tuple[type[Event], ...] = (
    LibraryChanged,
    ScanStarted,
    ScanProgress,
    ScanFinished,
    ScanFailed,
    ScanCancelled,
)
ALL_EVENTS: tuple[type[Event], ...] = (*BROWSER_EVENTS, ScanCancelRequest)
EVENT_TYPES: dict[str, type[Event]] = {event.type_name: event for event in ALL_EVENTS}


def from_json(body: dict[str, Any], origin: str) -> Event | None:
    """An event received from another instance, or None for an unknown or malformed one."""
    event_type = EVENT_TYPES.get(str(body.get("type")))
    if event_type is None:
        return None
    values = {k: v for k, v in body.items() if k not in ("type", "origin")}
    try:
        if event_type is ScanProgress:
            library = values.pop("library")
            return ScanProgress(library=library, progress=values, origin=origin)
        names = {item.name for item in dataclasses.fields(event_type)}
        return event_type(**{k: v for k, v in values.items() if k in names and k != "origin"}, origin=origin)
    except (TypeError, KeyError):
        return None


E = TypeVar("E", bound=Event)
Subscriber = Callable[[Any], None]


class EventBus:
    """Synchronous publish/subscribe; a subscriber names the event types it reacts to."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[tuple[type[Event], ...], Subscriber]] = []

    def subscribe(self, subscriber: Callable[[E], None], *kinds: type[E]) -> Callable[[], None]:
        """Call `subscriber` with every event of `kinds` (every event when none are named)."""
        entry = (kinds or (Event,), subscriber)
        self._subscribers.append(entry)
        return lambda: self._subscribers.remove(entry)

    def publish(self, event: Event) -> None:
        for kinds, subscriber in list(self._subscribers):
            if not isinstance(event, kinds):
                continue
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.type_name)

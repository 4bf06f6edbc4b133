"""In-process publish/subscribe for library and scan events.

Producers (deletes, restores, scans) publish plain dicts with a "type"; subscribers (catalog
invalidation, the WebSocket hub, a Redis relay when several instances run) react. Publishing
is synchronous and never raises because of a subscriber.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("archive_catalog")

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.get("type"))


def library_changed(site: str, model: str | None) -> Event:
    return {"type": "library.changed", "site": site, "model": model}

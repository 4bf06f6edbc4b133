"""Worker processes that end with their server: a SIGKILLed server cannot shut its pools down,
and orphaned workers would keep its output, files and memory (no aiohttp)."""

from __future__ import annotations

import os
import threading
import time

CHECK_INTERVAL_S = 0.5


def exit_with(server_pid: int) -> None:
    """In a worker process: a daemon thread that ends the process once `server_pid` is gone."""
    threading.Thread(target=_watch, args=(server_pid,), daemon=True, name="server-watch").start()


def _watch(server_pid: int) -> None:
    while True:
        time.sleep(CHECK_INTERVAL_S)
        try:
            os.kill(server_pid, 0)
        except (ProcessLookupError, PermissionError):  # gone (its pid maybe reused by another user)
            os._exit(0)

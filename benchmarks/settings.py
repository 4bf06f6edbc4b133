"""Where the benchmarks find things and how they run: every machine-specific value is a setting
read from the environment once, with a default derived from this checkout.

- `BENCH_DATA`: generated data, made once and reused (default `<repo>/../bench-data` when it
  exists, else `$XDG_CACHE_HOME/archive-catalog/bench-data`; never inside the repo);
- `BENCH_GENERATORS`: the folder holding `make_library.py` and `make_duptree.py` (default
  `<repo>/../shared/bench`);
- `BENCH_CHECKOUT`: the checkout whose `python -m server` is measured (default this one);
- `BENCH_SERVER_CPU` / `BENCH_CLIENT_CPU`: the cores servers and load generators are pinned to;
- `BENCH_DURATION`, `BENCH_CONNECTIONS`: wrk defaults; `BENCH_NICE`: the benchmark priority.

Also the pinning itself: `pinned(cpu, argv)`, `pin_to_client_core()`, `on_server_core()`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def _data_dir() -> Path:
    if "BENCH_DATA" in os.environ:
        return Path(os.environ["BENCH_DATA"])
    beside = REPO_ROOT.parent / "bench-data"
    if beside.is_dir():
        return beside
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "archive-catalog" / "bench-data"


DATA_DIR = _data_dir()
GENERATORS_DIR = Path(os.environ.get("BENCH_GENERATORS", str(REPO_ROOT.parent / "shared" / "bench")))
CHECKOUT = Path(os.environ.get("BENCH_CHECKOUT", str(REPO_ROOT))).resolve()
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("BENCH_CLIENT_CPU", "1")
DEFAULT_DURATION_S = int(os.environ.get("BENCH_DURATION", "10"))
DEFAULT_CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
# The machine may be shared with other work: benchmark processes run at a higher priority
# (root only; BENCH_NICE=0 turns it off) so outside load disturbs the figures less.
NICE = os.environ.get("BENCH_NICE", "-10" if os.geteuid() == 0 else "0")


class BenchmarkError(RuntimeError):
    """A benchmark could not measure what it set out to (a peer failed, errors under load)."""


def generator(name: str) -> Path:
    """A data generator script from GENERATORS_DIR (`make_library.py`, `make_duptree.py`)."""
    path = GENERATORS_DIR / name
    if not path.is_file():
        raise BenchmarkError(f"{path} not found (set BENCH_GENERATORS)")
    return path


def pinned(cpu: str, argv: Sequence[str]) -> list[str]:
    """argv run on one core (taskset), at the benchmark priority (nice)."""
    adjustment = int(NICE) - os.getpriority(os.PRIO_PROCESS, 0)  # nice -n is relative to ours
    prefix = ["nice", "-n", str(adjustment)] if adjustment else []
    return [*prefix, "taskset", "-c", cpu, *argv]


def pin_to_client_core() -> None:
    """Pin this (harness) process to the client core at the benchmark priority."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, int(NICE))


@contextlib.contextmanager
def on_server_core() -> Iterator[None]:
    """Run an in-process measurement on the server's core (while the server idles), so it
    meets the same outside load as the server, then go back to the client core."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(SERVER_CPU)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)

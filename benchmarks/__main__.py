"""`python -m benchmarks [name…]`: run every `benchmarks/bench_*.py`, or only the named ones.

A name is the part after `bench_` (`catalog`) or the module name (`bench_catalog`). Each
benchmark module has `main() -> int` (0: every goal met, 1: a goal missed). The exit status
is the worst of them; a benchmark that crashes is reported and the others still run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from .settings import pin_to_client_core


def discover() -> list[str]:
    folder = Path(__file__).resolve().parent
    return sorted(info.name for info in pkgutil.iter_modules([str(folder)]) if info.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    available = discover()
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        print("available:", ", ".join(name.removeprefix("bench_") for name in available))
        return 0
    chosen = []
    for arg in argv:
        name = arg if arg.startswith("bench_") else f"bench_{arg}"
        if name not in available:
            print(f"unknown benchmark {arg!r}; available: {', '.join(available)}", file=sys.stderr)
            return 2
        chosen.append(name)
    pin_to_client_core()
    worst = 0
    summary = []
    for name in chosen or available:
        started = time.monotonic()
        print(f"### {name}", flush=True)
        try:
            status = importlib.import_module(f"benchmarks.{name}").main()
        except Exception:
            traceback.print_exc()
            status = 2
        worst = max(worst, status)
        verdict = {0: "goals met", 1: "goal missed"}.get(status, "failed")
        summary.append(f"{name}: {verdict} ({time.monotonic() - started:.0f} s)")
    print("\n".join(summary))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

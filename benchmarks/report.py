"""Benchmark output: `Ratio` rows (ours ÷ peer against a goal), `print_table`, and a note on
the settings a run used."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .load import Runs
from .settings import CHECKOUT, CLIENT_CPU, DEFAULT_CONNECTIONS, DEFAULT_DURATION_S, NICE, SERVER_CPU


@dataclass(frozen=True)
class Ratio:
    """ours ÷ peer for one measure, against a goal (≥ goal when higher is better, else ≤)."""

    measure: str
    ours: float
    peer: float
    peer_name: str
    unit: str
    goal: float
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        return self.ours / self.peer if self.peer else float("inf")

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal


def throughput_rows(measure: str, ours: Runs, peer: Runs, peer_name: str, goal: float) -> list[Ratio]:
    """Two rows for a wrk comparison: best req/s, and req per server CPU-second (noise-robust)."""
    return [
        Ratio(measure, ours.requests_per_s, peer.requests_per_s, peer_name, "req/s", goal),
        Ratio("  … per server CPU-s", ours.requests_per_cpu_s, peer.requests_per_cpu_s, peer_name, "req/CPU-s", goal),
    ]


def format_value(value: float, unit: str) -> str:
    if unit == "B/s":
        for scale, name in ((1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s")):
            if value >= scale:
                return f"{value / scale:.2f} {name}"
        return f"{value:.0f} B/s"
    if unit == "s":
        return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "KiB":
        return f"{value / 1024:.1f} MiB"
    return f"{value:,.0f} {unit}"


def print_table(title: str, rows: Sequence[Ratio], notes: Sequence[str] = ()) -> None:
    header = ("measure", "ours", "peer", "ratio", "goal", "")
    table = [header]
    for row in rows:
        sign = "≥" if row.higher_is_better else "≤"
        table.append(
            (
                row.measure,
                format_value(row.ours, row.unit),
                f"{format_value(row.peer, row.unit)} ({row.peer_name})",
                f"{row.ratio:.2f}",
                f"{sign} {row.goal:g}",
                "met" if row.met else "MISSED",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print(f"\n== {title} ==")
    for i, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))
    for note in notes:
        print(f"  {note}")
    print(flush=True)


def environment_note() -> str:
    return (
        f"server core {SERVER_CPU}, client core {CLIENT_CPU}, nice {NICE}, wrk {DEFAULT_CONNECTIONS} connections × "
        f"{DEFAULT_DURATION_S} s, Python {sys.version.split()[0]}, ours from {CHECKOUT}"
    )

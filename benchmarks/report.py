"""Benchmark output: `Ratio` rows (ours ÷ peer against a goal), `print_table`, and a note on
the settings a run used."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .load import Runs, WrkResult
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
    # paired rounds (ours and the peer measured one after the other): the ratio is the median of
    # the rounds' ratios, and their range is printed beside it (never the best run)
    round_ratios: tuple[float, ...] = ()

    @property
    def ratio(self) -> float:
        if self.round_ratios:
            return statistics.median(self.round_ratios)
        return self.ours / self.peer if self.peer else float("inf")

    @property
    def ratio_text(self) -> str:
        if not self.round_ratios:
            return f"{self.ratio:.2f}"
        return f"{self.ratio:.2f} [{min(self.round_ratios):.2f}–{max(self.round_ratios):.2f}]"

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal


def throughput_rows(measure: str, ours: Runs, peer: Runs, peer_name: str, goal: float) -> list[Ratio]:
    """Two rows for a wrk comparison, req/s and req per server CPU-second: medians over the
    interleaved rounds, and the ratio as the median [range] of each round's ours ÷ peer."""

    def paired(figure: Callable[[WrkResult], float]) -> tuple[float, ...]:
        return tuple(figure(a) / figure(b) for a, b in zip(ours.runs, peer.runs, strict=True) if figure(b))

    def per_cpu(run: WrkResult) -> float:
        return run.requests_per_cpu_s or 0.0

    def per_s(run: WrkResult) -> float:
        return run.requests_per_s

    return [
        Ratio(measure, ours.median(per_s), peer.median(per_s), peer_name, "req/s", goal, True, paired(per_s)),
        Ratio("  … per server CPU-s", ours.median(per_cpu), peer.median(per_cpu), peer_name, "req/CPU-s", goal,
              True, paired(per_cpu)),
    ]  # fmt: skip


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
                row.ratio_text,
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

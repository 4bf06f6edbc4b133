"""Benchmark output: `Ratio` rows (ours ÷ peer against a goal), `print_table`, and a note on
the settings a run used; and the rounds behind a row: `--rounds`/`--quick` (`add_round_options`,
`chosen_rounds`), a row from paired rounds (`rounds_ratio`), the better of several peers in each
round (`best_per_round`, `fastest_runs`) and a median [range] text (`spread`)."""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .load import Runs, WrkResult
from .settings import CHECKOUT, CLIENT_CPU, DEFAULT_CONNECTIONS, DEFAULT_DURATION_S, NICE, SERVER_CPU


@dataclass(frozen=True)
class Ratio:
    """ours ÷ peer for one measure, against a goal (≥ goal when higher is better, else ≤); a goal
    of None makes a reference row (shown, never missed)."""

    measure: str
    ours: float
    peer: float
    peer_name: str
    unit: str
    goal: float | None
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
        if self.goal is None:
            return True
        return self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal

    @property
    def goal_text(self) -> str:
        if self.goal is None:
            return "–"
        return f"{'≥' if self.higher_is_better else '≤'} {self.goal:g}"

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return "reference"
        return "met" if self.met else "MISSED"


DEFAULT_ROUNDS = 5
QUICK_ROUNDS = 2


def add_round_options(parser: argparse.ArgumentParser) -> None:
    """`--rounds N` (interleaved rounds, default 5) and `--quick` (2 rounds: a smoke check)."""
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="interleaved rounds (default 5)")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds: proves the benchmark runs, not a figure"
    )


def chosen_rounds(args: argparse.Namespace) -> int:
    rounds: int = QUICK_ROUNDS if args.quick else args.rounds
    if rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    return rounds


def paired_ratios(ours: Sequence[float], peer: Sequence[float]) -> tuple[float, ...]:
    """Each round's ours ÷ peer (rounds where the peer measured 0 are left out)."""
    return tuple(a / b for a, b in zip(ours, peer, strict=True) if b)


def rounds_ratio(
    measure: str,
    ours: Sequence[float],
    peer: Sequence[float],
    peer_name: str,
    unit: str,
    goal: float | None,
    higher_is_better: bool = True,
) -> Ratio:
    """A row from paired rounds: the medians of both sides, the ratio the median [range] of the
    rounds' ratios."""
    median = statistics.median
    return Ratio(
        measure, median(ours), median(peer), peer_name, unit, goal, higher_is_better, paired_ratios(ours, peer)
    )


def round_winners(series: Mapping[str, Sequence[float]], higher_is_better: bool = True) -> list[str]:
    """Per round, which of several peers measured best."""
    rounds = len(next(iter(series.values())))
    choose = max if higher_is_better else min
    return [choose(series, key=lambda peer: series[peer][index]) for index in range(rounds)]


def winners_name(winners: Sequence[str]) -> str:
    """`nginx` when one peer won every round, else e.g. `best of nginx 3, aiohttp FileResponse 2`."""
    counts = Counter(winners)
    if len(counts) == 1:
        return winners[0]
    return "best of " + ", ".join(f"{name} {count}" for name, count in counts.most_common())


def best_per_round(series: Mapping[str, Sequence[float]], higher_is_better: bool = True) -> tuple[list[float], str]:
    """Per round, the best of several peers' figures, and whose they were (`winners_name`)."""
    winners = round_winners(series, higher_is_better)
    return [series[name][index] for index, name in enumerate(winners)], winners_name(winners)


def fastest_runs(runs: Mapping[str, Runs]) -> tuple[str, Runs]:
    """Per round, the peer run with the most requests/s (with its CPU figure): the faster peer."""
    winners = round_winners({name: [run.requests_per_s for run in peer.runs] for name, peer in runs.items()})
    chosen = tuple(runs[name].runs[index] for index, name in enumerate(winners))
    return winners_name(winners), Runs(chosen)


def spread(values: Sequence[float], unit: str) -> str:
    """`median [min–max]` of a figure over the rounds."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{format_value(mid, unit)} [{format_value(low, unit)}–{format_value(high, unit)}]"


def throughput_rows(measure: str, ours: Runs, peer: Runs, peer_name: str, goal: float | None) -> list[Ratio]:
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
        table.append(
            (
                row.measure,
                format_value(row.ours, row.unit),
                f"{format_value(row.peer, row.unit)} ({row.peer_name})",
                row.ratio_text,
                row.goal_text,
                row.verdict,
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

"""Shared by the benchmarks in bench/: the `--quick`/`--results` options and one
way to state a figure beside its goal.

Each benchmark prints its own detail; every figure that has a goal (and a few
that only inform) also goes through `Report.figure`, which prints it and, with
`--results FILE`, appends it as one JSON line.  `bench/run.py` (what
`script/bench` runs) collects those lines into the closing table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    bench: str  # e.g. "spf"
    name: str  # what was measured, e.g. "live: ours / floor"
    value: str  # the measured figure as shown, e.g. "1.21x"
    goal: str  # e.g. "<= 1.3x"; "" when the figure only informs
    passed: bool | None  # None when there is no goal

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "FAIL")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and smaller inputs where allowed"
    )
    parser.add_argument("--results", type=Path, help="append each figure as a JSON line here")


class Report:
    def __init__(self, bench: str, args: argparse.Namespace) -> None:
        self.bench = bench
        self.path: Path | None = getattr(args, "results", None)

    def figure(self, name: str, value: str, goal: str = "", passed: bool | None = None) -> Figure:
        fig = Figure(self.bench, name, value, goal, passed)
        tail = f"  goal {goal}  {fig.verdict}" if goal else ""
        print(f"  {name:46} {value:>14}{tail}", flush=True)
        if self.path is not None:
            with self.path.open("a") as out:
                out.write(json.dumps(asdict(fig)) + "\n")
        return fig

    def at_most(self, name: str, value: float, limit: float, unit: str = "x") -> Figure:
        return self.figure(name, _fmt(value, unit), f"<= {_fmt(limit, unit)}", value <= limit)

    def at_least(self, name: str, value: float, limit: float, unit: str = "x") -> Figure:
        return self.figure(name, _fmt(value, unit), f">= {_fmt(limit, unit)}", value >= limit)


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x" if value < 100 else f"{value:.0f}x"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:g}{unit}"


def load(path: Path) -> list[Figure]:
    if not path.exists():
        return []
    return [Figure(**json.loads(line)) for line in path.read_text().splitlines() if line]


def interleaved(
    contenders: dict[str, Callable[[], Any]], repeat: int, pick: str = "min"
) -> tuple[dict[str, float], dict[str, Any]]:
    """Time each contender `repeat` times, taking turns (so load from other processes
    on a shared machine falls on all of them alike); returns the best (min) or median
    seconds per contender and each one's last return value."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    last: dict[str, Any] = {}
    for _ in range(repeat):
        for name, run in contenders.items():
            start = time.perf_counter()
            last[name] = run()
            times[name].append(time.perf_counter() - start)
    choose = min if pick == "min" else statistics.median
    return {name: choose(values) for name, values in times.items()}, last

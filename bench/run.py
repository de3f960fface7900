"""Run every benchmark in bench/ and close with one table: each figure beside its
goal, PASS or FAIL.  What `script/bench` runs.

    script/bench [--quick] [--only spf,compile,...]

--quick passes --quick on (fewer repeats, one run of checkdmarc); the goals stay
the same.  The exit status is non-zero when a benchmark crashed, not when a goal
is missed: the table says that.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from report import Figure, load

HERE = Path(__file__).resolve().parent
# Issue 15's goals first; any other bench/bench_*.py after them.
_FIRST = ["validate", "spf", "compile", "octodns"]
BENCHES = _FIRST + sorted(
    {p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py")} - set(_FIRST)
)


def table(figures: list[Figure]) -> str:
    rows = [("bench", "figure", "measured", "goal", "")]
    rows += [(f.bench, f.name, f.value, f.goal, f.verdict) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.rjust(w) if i in (2, 3) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else BENCHES
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    crashed = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "figures.jsonl"
        for name in chosen:
            print(f"== bench/bench_{name}.py", flush=True)
            cmd = [sys.executable, str(HERE / f"bench_{name}.py"), "--results", str(results)]
            began = time.monotonic()
            code = subprocess.run([*cmd, *(["--quick"] if args.quick else [])]).returncode
            print(f"   ({time.monotonic() - began:.0f} s)", flush=True)
            if code != 0:
                crashed.append(name)
        figures = load(results)
    load1, load5, _ = os.getloadavg()
    print()
    print(
        f"== Summary {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, load {load1:.1f}/{load5:.1f} (1/5 min), "
        f"{'quick' if args.quick else 'full'} run, {time.monotonic() - started:.0f} s"
    )
    print(table(figures))
    passed = sum(f.passed is True for f in figures)
    failed = sum(f.passed is False for f in figures)
    tail = f"; crashed: {', '.join(crashed)}" if crashed else ""
    print(f"{passed} PASS, {failed} FAIL{tail}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())

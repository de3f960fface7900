"""Policies for 1,000 and 10,000 synthetic domains processed into records.

Measures what `octodns-sync` spends in the processor: loading and validating
every policy (the processor's __init__) plus `process_source_zone` for every
zone.  DKIM keys are pre-generated (Ed25519), so key generation is not in the
figure.  Each size runs in a fresh process (best of --repeat), so its peak
resident memory is its own: the peak is measured from just before the processor
is built, after the policy files and keys were written.  Goals: 10,000 domains
in at most 5 s, and a 10k/1k ratio of at most 11 (linear is 10).  Beside it, not
in it: the floor, what octoDNS and logging alone cost for the same zones (the
bench's Zone objects, the same records built, validated and added by octoDNS, the
same log lines written), which no processor goes below.

    .venv/bin/python bench/bench_compile.py [--small 1000] [--large 10000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import estate
from octodns.record import Record
from octodns.zone import Zone
from report import Report, add_arguments

from octodns_mailauth._workers import idle_cpus
from octodns_mailauth.integration.bulk import PARALLEL_MIN_POLICIES
from octodns_mailauth.processor import MailAuthProcessor


def one(count: int) -> dict[str, float]:
    """Build the processor over `count` policies and process every zone, in this process."""
    os.umask(0o077)
    with tempfile.TemporaryDirectory() as tmp:
        policies, keys = estate.make(Path(tmp), count)
        estate.reset_peak_rss()
        rss_before, _ = estate.rss_kib()
        # What the processor decides just after: its first compile in worker
        # processes, one per idle CPU (integration/bulk.py).
        workers = idle_cpus(waiting=True) if count >= PARALLEL_MIN_POLICIES else 1
        start = time.perf_counter()
        cpu = time.process_time()
        proc = MailAuthProcessor("mailauth", policies=str(policies), keys=str(keys))
        records = 0
        logged = _Logged(proc.log)
        floor = floor_cpu = 0.0
        for i in range(count):
            zone = Zone(f"{estate.domain(i)}.", [])
            proc.process_source_zone(zone, sources=[])
            records += len(zone.records)
            # Not in the figure: what octoDNS and logging alone cost for this zone.
            f0, c0 = time.perf_counter(), time.process_time()
            _octodns_alone(zone, logged)
            floor += time.perf_counter() - f0
            floor_cpu += time.process_time() - c0
        seconds = time.perf_counter() - start - floor
        cpu = time.process_time() - cpu - floor_cpu
        _, peak = estate.rss_kib()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, ended
    return {
        "seconds": seconds,
        "cpu": cpu,  # this process's; the workers' is not in it
        "workers": workers,
        "workers_cpu": children.ru_utime + children.ru_stime,
        "workers_peak": children.ru_maxrss,  # KiB: the largest worker's
        "records": records,
        "floor": floor,
        "floor_cpu": floor_cpu,
        "logged": logged.count,
        "rss_before": rss_before,
        "peak": peak,
    }


class _Logged(logging.Filter):
    """The processor's log calls, kept (unformatted) until `_octodns_alone` repeats them."""

    def __init__(self, log: logging.Logger) -> None:
        super().__init__()
        self.calls: list[tuple[int, object, tuple[object, ...]]] = []
        self.count = 0
        log.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        self.calls.append((record.levelno, record.msg, record.args or ()))
        self.count += 1
        return True


_ALONE = logging.getLogger("bench-octodns-alone")  # no handler: stderr, as the processor's


def _octodns_alone(processed: Zone, logged: _Logged) -> None:
    """The floor under the figure for one zone, which no processor can go below
    with octoDNS and this estate: the bench's Zone, the same records built and
    validated by octoDNS (Record.new) and added, and the same log lines written."""
    zone = Zone(processed.name, [])
    for r in processed.records:
        zone.add_record(Record.new(zone, r.name, {"type": r._type, **r.data}), replace=True)
    for level, msg, args in logged.calls:
        _ALONE.log(level, msg, *args)
    logged.calls.clear()


def measure(count: int, repeat: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(count)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout))
    return min(runs, key=lambda r: r["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--repeat", type=int, help="fresh processes per size (best kept)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return 0
    repeat = args.repeat or (1 if args.quick else 3)
    report = Report("compile", args)
    results = {}
    for count in (args.small, args.large):
        r = results[count] = measure(count, repeat)
        print(
            f"{count:>6} domains: {r['seconds']:7.2f} s, "
            f"{r['seconds'] / count * 1000:6.2f} ms/domain, {r['records']:.0f} records, "
            f"peak RSS {r['peak'] / 1024:.0f} MiB ({r['rss_before'] / 1024:.0f} MiB before), "
            f"CPU {r['cpu']:.2f} s in the main process; first compile in "
            f"{r['workers']:.0f} process(es) (workers: {r['workers_cpu']:.2f} s CPU, "
            f"peak RSS {r['workers_peak'] / 1024:.0f} MiB); octoDNS and logging alone "
            f"{r['floor']:.2f} s, {r['floor_cpu']:.2f} s CPU (Zone, Record.new and add_record "
            "for the same records, "
            f"the same {r['logged']:.0f} log lines)"
        )
    small, large = results[args.small], results[args.large]
    report.at_most(f"{args.large} domains", large["seconds"], 5, "s")
    report.at_most(
        f"{args.large}/{args.small} time ratio (linear {args.large / args.small:.0f})",
        large["seconds"] / small["seconds"],
        11 * args.large / args.small / 10,
    )
    report.figure(
        f"  floor: octoDNS and logging alone, {args.large}",
        f"{large['floor']:.2f} s ({large['floor_cpu']:.2f} s CPU)",
    )
    report.figure(
        f"peak RSS, {args.large} policies",
        f"{large['peak'] / 1024:.0f} MiB",
    )
    report.figure(
        f"  of which the processor's, {args.large}",
        f"{(large['peak'] - large['rss_before']) / 1024:.0f} MiB",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

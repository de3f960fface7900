"""SPF benchmark: the 483 real-world SPF records (tests/data/realworld) served by a
private loopback PowerDNS, analysed by us and by checkdmarc in the same run.

Prints wall time (best of --repeat cold runs), DNS queries counted by the server,
our offline analysis from a lock file, agreement, and the ratios.

    .venv/bin/python bench/bench_spf.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import spf_realworld as rw  # noqa: E402
from pdns_fixture import PdnsServer  # noqa: E402

from octodns_mailauth.live_resolver import LiveResolver  # noqa: E402
from octodns_mailauth.spf.lock import (  # noqa: E402
    LockResolver,
    RecordingResolver,
    SpfLock,
    lock_from_recording,
)


def best(runs: list[float]) -> float:
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="cold runs each (best is kept)")
    args = parser.parse_args()
    with PdnsServer() as pdns:
        rw.serve(pdns)
        domains = [r["domain"] for r in rw.surveyed()]
        nameserver = f"{pdns.host}:{pdns.dns_port}"

        our_times, our_queries = [], 0
        ours = recorder = None
        for _ in range(args.repeat):
            live = LiveResolver([nameserver])
            recorder = RecordingResolver(live)
            before = rw.server_queries(pdns)
            start = time.perf_counter()
            ours = rw.ours(domains, recorder)
            our_times.append(time.perf_counter() - start)
            our_queries = rw.server_queries(pdns) - before
            live.close()

        their_times, their_queries = [], 0
        theirs = None
        for _ in range(args.repeat):
            before = rw.server_queries(pdns)
            start = time.perf_counter()
            theirs = rw.checkdmarc_run(domains, rw.counting_resolver(pdns))
            their_times.append(time.perf_counter() - start)
            their_queries = rw.server_queries(pdns) - before

        assert ours is not None and theirs is not None and recorder is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "spf-lock.json"
            lock_from_recording(path, recorder, datetime.now(timezone.utc)).write()
            offline_times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                offline = rw.ours(domains, LockResolver(SpfLock.load(path)), workers=1)
                offline_times.append(time.perf_counter() - start)
            lock_kb = path.stat().st_size / 1024

    verdicts = sum(ours[d].verdict == theirs[d].verdict for d in domains)
    compared = [d for d in domains if theirs[d].lookups is not None]
    counts = sum(ours[d].lookups == theirs[d].lookups for d in compared)
    offline_same = sum(
        (ours[d].verdict, ours[d].lookups) == (offline[d].verdict, offline[d].lookups)
        for d in domains
    )
    t_ours, t_theirs, t_off = best(our_times), best(their_times), best(offline_times)
    print(f"records analysed:            {len(domains)} (best of {args.repeat} cold runs)")
    print(f"ours, live:                  {t_ours * 1000:8.1f} ms  {our_queries:5d} queries")
    print(f"checkdmarc 6.0.4, live:      {t_theirs * 1000:8.1f} ms  {their_queries:5d} queries")
    print(f"ours, offline (lock {lock_kb:.0f} KiB): {t_off * 1000:8.1f} ms      0 queries")
    print(f"live wall-time ratio:        {t_theirs / t_ours:6.1f}x faster (goal 5x)")
    print(f"query ratio:                 {their_queries / our_queries:6.1f}x fewer")
    print(f"offline vs checkdmarc live:  {t_theirs / t_off:6.1f}x faster (goal 100x)")
    print(f"verdicts agree:              {verdicts}/{len(domains)}")
    print(f"lookup counts agree:         {counts}/{len(compared)} where checkdmarc gives one")
    print(f"offline = live:              {offline_same}/{len(domains)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

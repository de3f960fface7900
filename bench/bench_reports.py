"""How fast `reports ingest` stores DMARC aggregate reports.

Generates --count aggregate reports (default 10,000) as receivers send them:
1 to 40 records each (most have a few, some dozens, as large receivers' do),
from a pool of sources over 90 days and five domains, RFC 7489-era or RFC 9990
(with its namespace), indented as most receivers write them or on one line, in
six containers in equal shares: plain XML, gzip, zip, a mail message (.eml)
with a zip attachment, an mbox of ten messages with gzip attachments, and
parsedmarc's JSON output (ten reports a file).  Then ingests the folder into a
new evidence database as `octodns-mailauth reports ingest DIR` does, and
prints reports per second, the database size, the load on the machine, and the
time beside the goal (10,000 reports in at most 10 s on this machine).  A
second ingest of the same folder (every report a duplicate) is timed too.
CPU time counts the worker processes' too.  The ingest runs with the cyclic
collector's pace of the installed command (console.py).  Writes only in a temp folder.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reports_synth as rs  # noqa: E402
from report import Report, add_arguments  # noqa: E402

from octodns_mailauth.reports.ingest import (  # noqa: E402
    read_paths,
)
from octodns_mailauth.reports.store import EvidenceStore  # noqa: E402

try:
    from octodns_mailauth.console import collect_less
except ImportError:  # a version whose command ran with the collector's default pace

    def collect_less() -> None:
        pass


try:
    from octodns_mailauth.reports.ingest import default_jobs
except ImportError:  # a version before worker processes, timed for comparison
    default_jobs = None  # type: ignore[assignment]

GOAL_SECONDS_PER_10K = 10.0
DOMAINS = ["example.com", "example.net", "shop.example", "example.org", "brand.example"]
RECORDS = [1, 1, 1, 2, 2, 3, 4, 5, 8, 12, 20, 40]  # records per report, drawn uniformly


def _sources(rng: random.Random, n: int) -> list[rs.Source]:
    out = []
    for i in range(n):
        first = rng.choice([40, 167, 198, 203, 209])
        ip = f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{i % 250 + 1}"
        ok = rng.random() < 0.8
        out.append(
            rs.Source(
                ip,
                0,
                rng.choice(["example.com", "sendgrid.net", "bounce.example.net", "mcsv.net"]),
                "pass" if ok else rng.choice(["fail", "softfail", "none"]),
                [
                    (
                        rng.choice(DOMAINS),
                        rng.choice(["s1", "selector1", "google", "k2"]),
                        "pass" if ok else "fail",
                    )
                ],
                "pass" if ok else "fail",
                rng.choice(["pass", "fail"]),
            )
        )
    return out


CONTAINERS = ("xml", "gzip", "zip", "eml", "mbox", "parsedmarc")
PER_FILE = 10  # reports in one mbox or one parsedmarc JSON file


def generate(folder: Path, count: int, seed: int = 1) -> int:
    """Writes `count` reports in files under `folder`; returns the bytes written."""
    rng = random.Random(seed)
    pool = _sources(rng, 2000)
    start = date(2026, 1, 1)
    total = 0
    groups: dict[str, list] = {"mbox": [], "parsedmarc": []}

    def write(name: str, blob: bytes) -> None:
        nonlocal total
        (folder / name).write_bytes(blob)
        total += len(blob)

    def flush(kind: str, name: str) -> None:
        items = groups[kind]
        if kind == "mbox":
            write(name + ".mbox", rs.mbox(items))
        else:
            write(name + ".json", rs.parsedmarc_file(items))
        items.clear()

    for n in range(count):
        domain = DOMAINS[n % len(DOMAINS)]
        day = start + timedelta(days=rng.randrange(90))
        begin = int(datetime.combine(day, dtime(0), timezone.utc).timestamp())
        org = rs.REPORTERS[n % len(rs.REPORTERS)]
        rows = [(src, rng.randrange(1, 500)) for src in rng.sample(pool, rng.choice(RECORDS))]
        kind = CONTAINERS[n % len(CONTAINERS)]
        name = f"{org}!{domain}!{begin}!{n}"
        if kind == "parsedmarc":
            groups[kind].append(rs.parsedmarc_json(org, f"bench-{n}", begin, domain, rows))
        else:
            data = rs.aggregate_xml(
                org,
                f"bench-{n}",
                begin,
                domain,
                rows,
                policy="none",
                rfc9990=rng.random() < 1 / 3,
                indent=org != "outlook.com",
            )
            if kind == "mbox":
                groups[kind].append(
                    rs.message_with_attachment(
                        rs.gzip_bytes(data), name + ".xml.gz", "application/gzip", name
                    )
                )
            else:
                write(*rs.wrap(data, name, CONTAINERS.index(kind)))
        if kind in groups and (len(groups[kind]) == PER_FILE or n >= count - len(CONTAINERS)):
            flush(kind, name)
    return total


def _ingest(store: EvidenceStore, folder: Path, jobs: int) -> Any:
    """As `octodns-mailauth reports ingest FOLDER --jobs N` does."""
    if hasattr(store, "ingest_paths"):
        return store.ingest_paths([folder], jobs=jobs)
    return store.ingest(read_paths([folder]))  # a version before it, timed for comparison


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help="reports (default 10,000; 2,000 --quick)")
    parser.add_argument(
        "--reports", type=Path, help="folder of reports: generated there if missing, else reused"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="worker processes (default: as `reports ingest`, one per idle CPU)",
    )
    add_arguments(parser)
    args = parser.parse_args()

    args.count = args.count or (2_000 if args.quick else 10_000)
    report = Report("reports", args)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.reports or Path(tmp) / "reports"
        t0 = time.perf_counter()
        if folder.exists():
            size = sum(p.stat().st_size for p in folder.iterdir())
            print(f"reusing {folder} ({size / 1e6:.1f} MB in files)")
        else:
            folder.mkdir()
            size = generate(folder, args.count)
            gen = time.perf_counter() - t0
            print(f"generated {args.count} reports ({size / 1e6:.1f} MB in files) in {gen:.1f} s")
        db = Path(tmp) / "evidence.db"
        load_before = _load()
        # As `reports ingest` chooses (one per idle CPU for many files), once for both runs.
        n = args.jobs or (default_jobs(len(list(folder.iterdir()))) if default_jobs else 1)
        collect_less()  # as the installed command (console.py) runs
        print(f"worker processes: {n if n > 1 else 'none, one process reads'}")
        t0, c0 = time.perf_counter(), _cpu()
        with EvidenceStore(db) as store:
            stats = _ingest(store, folder, n)
            counts = rs.counts(store)
        took, cpu = time.perf_counter() - t0, _cpu() - c0
        t0, c0 = time.perf_counter(), _cpu()
        with EvidenceStore(db) as store:
            again = _ingest(store, folder, n)
        took_again, cpu_again = time.perf_counter() - t0, _cpu() - c0
        load_after = _load()
        assert stats.aggregate == args.count and not stats.refused, stats.summary()
        assert again.duplicates == args.count
        db_size = db.stat().st_size + sum(
            p.stat().st_size for p in Path(tmp).glob("evidence.db-*")
        )
        goal = GOAL_SECONDS_PER_10K * args.count / 10_000
        print(f"{load_before} before, {load_after} after (2 cores are shared)")
        print(
            f"ingest: {args.count} reports, {counts['dmarc_rows']} day rows, "
            f"{counts['messages']} messages in {took:.2f} s = {args.count / took:.0f} reports/s "
            f"(CPU {cpu:.2f} s = {args.count / cpu:.0f} reports/s; the machine is shared, "
            "so wall time may exceed CPU time)"
        )
        print(f"database: {db_size / 1e6:.1f} MB ({db_size / args.count:.0f} bytes per report)")
        print(
            f"time / goal ({goal:.0f} s): wall {took / goal:.2f}, CPU {cpu / goal:.2f} "
            "(at most 1.00 meets the goal)"
        )
        print(
            f"second ingest (all duplicates): {took_again:.2f} s = "
            f"{args.count / took_again:.0f} reports/s (CPU {cpu_again:.2f} s)"
        )
        report.at_most(f"ingest {args.count} aggregate reports", took, goal, "s")
        report.figure("  the same, CPU seconds", f"{cpu:.2f} s")
        report.figure("  reports per second (wall)", f"{args.count / took:.0f}")
        report.figure("  database size", f"{db_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

"""How fast `reports ingest` stores DMARC aggregate reports.

Generates --count aggregate reports (default 10,000) as receivers send them:
1 to 40 records each (most have a few, some dozens, as large receivers' do),
from a pool of sources over 90 days and five domains, in a mix of containers
(plain RFC 7489 XML, RFC 9990 XML with its namespace, gzip, zip, mail messages
with a zip attachment).  Then ingests the folder into a new evidence database
in one process, as `octodns-mailauth reports ingest DIR` does, and prints
reports per second, the database size, and the time as a ratio of the goal
(10,000 reports in at most 10 s on this machine).  A second ingest of the same
folder (every report a duplicate) is timed too.  Writes only in a temp folder.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reports_synth as rs  # noqa: E402
from report import Report, add_arguments  # noqa: E402

from octodns_mailauth.reports.ingest import read_paths  # noqa: E402
from octodns_mailauth.reports.store import EvidenceStore  # noqa: E402

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


def generate(folder: Path, count: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    pool = _sources(rng, 2000)
    start = date(2026, 1, 1)
    total = 0
    for n in range(count):
        domain = DOMAINS[n % len(DOMAINS)]
        day = start + timedelta(days=rng.randrange(90))
        begin = int(datetime.combine(day, dtime(0), timezone.utc).timestamp())
        org = rs.REPORTERS[n % len(rs.REPORTERS)]
        rows = [(src, rng.randrange(1, 500)) for src in rng.sample(pool, rng.choice(RECORDS))]
        data = rs.aggregate_xml(
            org, f"bench-{n}", begin, domain, rows, policy="none", rfc9990=(n % 3 == 0)
        )
        name, blob = rs.wrap(data, f"{org}!{domain}!{begin}!{n}", n % 4)
        (folder / name).write_bytes(blob)
        total += len(blob)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help="reports (default 10,000; 2,000 --quick)")
    add_arguments(parser)
    args = parser.parse_args()
    args.count = args.count or (2_000 if args.quick else 10_000)
    report = Report("reports", args)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "reports"
        folder.mkdir()
        t0 = time.perf_counter()
        size = generate(folder, args.count)
        gen = time.perf_counter() - t0
        db = Path(tmp) / "evidence.db"
        t0, c0 = time.perf_counter(), time.process_time()
        with EvidenceStore(db) as store:
            stats = store.ingest(read_paths([folder]))
            counts = store.counts()
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        with EvidenceStore(db) as store:
            again = store.ingest(read_paths([folder]))
        took_again = time.perf_counter() - t0
        assert stats.aggregate == args.count and not stats.refused, stats.summary()
        assert again.duplicates == args.count
        db_size = db.stat().st_size + sum(
            p.stat().st_size for p in Path(tmp).glob("evidence.db-*")
        )
        goal = GOAL_SECONDS_PER_10K * args.count / 10_000
        print(f"generated {args.count} reports ({size / 1e6:.1f} MB in files) in {gen:.1f} s")
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
            f"{args.count / took_again:.0f} reports/s"
        )
        report.at_most(f"ingest {args.count} aggregate reports", took, goal, "s")


if __name__ == "__main__":
    main()

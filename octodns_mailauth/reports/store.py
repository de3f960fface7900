"""The evidence store: an SQLite file that accumulates reports over months.

Reports are summed per policy domain and day (`dmarc_day`, `tls_day`); `report`
remembers each (kind, organisation, report id) once, so a report ingested twice
counts once.  The schema version is SQLite's `user_version`; `MIGRATIONS[n]` takes
a store from version n to n+1 in its own transaction, so an old file is brought up
to date when opened and a newer one is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import MailAuthError
from ..names import is_subdomain
from .model import AggregateReport, AggregateRow, Refused, Report, Seen, TlsReport
from .orgmap import organisation


class StoreError(MailAuthError):
    pass


def _script(db: sqlite3.Connection, sql: str) -> None:
    # Statement by statement: executescript() would commit the migration's transaction.
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE report (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,            -- dmarc | tls
            org TEXT NOT NULL,
            report_id TEXT NOT NULL,
            domain TEXT NOT NULL,
            begin INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            format TEXT NOT NULL,
            source TEXT NOT NULL,
            ingested TEXT NOT NULL,
            UNIQUE (kind, org, report_id)
        );
        CREATE TABLE dmarc_day (
            domain TEXT NOT NULL,          -- policy_published/domain
            day TEXT NOT NULL,             -- YYYY-MM-DD (UTC) the report period begins
            source_ip TEXT NOT NULL,
            header_from TEXT NOT NULL,
            envelope_from TEXT NOT NULL,
            spf_domain TEXT NOT NULL,
            spf_result TEXT NOT NULL,
            dkim_domain TEXT NOT NULL,
            dkim_selector TEXT NOT NULL,
            dkim_result TEXT NOT NULL,
            dmarc_spf TEXT NOT NULL,       -- policy_evaluated: aligned SPF pass|fail
            dmarc_dkim TEXT NOT NULL,      -- policy_evaluated: aligned DKIM pass|fail
            disposition TEXT NOT NULL,
            messages INTEGER NOT NULL,
            PRIMARY KEY (domain, day, source_ip, header_from, envelope_from, spf_domain,
                         spf_result, dkim_domain, dkim_selector, dkim_result, dmarc_spf,
                         dmarc_dkim, disposition)
        ) WITHOUT ROWID;
        CREATE TABLE source (
            ip TEXT PRIMARY KEY,
            reverse_dns TEXT NOT NULL,
            base_domain TEXT NOT NULL,
            org TEXT NOT NULL,
            org_type TEXT NOT NULL
        ) WITHOUT ROWID;
        """,
    )


def _v2(db: sqlite3.Connection) -> None:
    # Version 2 added SMTP TLS reports (RFC 8460).
    _script(
        db,
        """
        CREATE TABLE tls_day (
            domain TEXT NOT NULL,          -- policy-domain
            day TEXT NOT NULL,
            policy_type TEXT NOT NULL,     -- sts | tlsa | no-policy-found
            mx_host TEXT NOT NULL,         -- receiving MX (failures) or the policy's mx-host
            result_type TEXT NOT NULL,     -- success, or the RFC 8460 failure result-type
            sessions INTEGER NOT NULL,
            PRIMARY KEY (domain, day, policy_type, mx_host, result_type)
        ) WITHOUT ROWID;
        """,
    )


def _v3(db: sqlite3.Connection) -> None:
    # Version 3 keeps the digest of the document each report was stored from (a
    # copy that differs is read in full, so a damaged one is refused); '' for
    # reports stored before, until a copy read in full sets it.
    db.execute("ALTER TABLE report ADD COLUMN digest TEXT NOT NULL DEFAULT ''")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class EvidenceRow:
    """One line of `dmarc_day`, with what is known of its source."""

    day: str
    source_ip: str
    header_from: str
    envelope_from: str
    spf_domain: str
    spf_result: str
    dkim_domain: str
    dkim_selector: str
    dkim_result: str
    dmarc_spf: str
    dmarc_dkim: str
    disposition: str
    messages: int
    reverse_dns: str = ""
    org: str = ""
    org_type: str = ""

    @property
    def dmarc_pass(self) -> bool:
        return self.dmarc_spf == "pass" or self.dmarc_dkim == "pass"


@dataclass(frozen=True)
class TlsRow:
    day: str
    policy_type: str
    mx_host: str
    result_type: str
    sessions: int


@dataclass
class Evidence:
    """What the store holds for one policy domain over a window of days."""

    domain: str
    since: str  # first day, inclusive
    until: str  # last day, inclusive
    rows: list[EvidenceRow]
    reports: int
    tls: list[TlsRow]

    @property
    def messages(self) -> int:
        return sum(r.messages for r in self.rows)

    @property
    def days(self) -> list[str]:
        return sorted({r.day for r in self.rows})


@dataclass(frozen=True)
class EvidenceInput:
    """What the edge (processor, CLI) hands the compile for one policy domain."""

    settings: Any  # settings.ReportsSettings
    evidence: Evidence | None  # None: the database file does not exist yet


def read_evidence(
    settings: Any, domains: Iterable[str], today: date | None = None
) -> dict[str, EvidenceInput]:
    """The last `settings.days` days (today included) for each domain.  A missing
    database is no evidence, not an error: reports may not have been ingested yet."""
    today = today or datetime.now(timezone.utc).date()
    since = today - timedelta(days=settings.days - 1)
    store = EvidenceStore.existing(settings.db)
    if store is None:
        return {d: EvidenceInput(settings, None) for d in domains}
    with store:
        return {d: EvidenceInput(settings, store.evidence(d, since, today)) for d in domains}


def day_of(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).date().isoformat()


@dataclass
class IngestStats:
    aggregate: int = 0
    tls: int = 0
    duplicates: int = 0
    refused: list[Refused] = field(default_factory=list)
    domains: set[str] = field(default_factory=set)

    @property
    def stored(self) -> int:
        return self.aggregate + self.tls

    def summary(self) -> str:
        return (
            f"{self.aggregate} DMARC aggregate and {self.tls} SMTP TLS reports stored, "
            f"{self.duplicates} already stored (counted once), {len(self.refused)} refused"
        )


class EvidenceStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            if self.path.parent and not self.path.parent.is_dir():
                raise StoreError(
                    f"{self.path}: folder {self.path.parent} does not exist for the reports "
                    "database"
                )
            self._dmarc_rows: list[tuple[Any, ...]] = []  # queued by add, written by _flush
            self._tls_rows: list[tuple[Any, ...]] = []
            self._names: dict[str, str] = {}  # source address -> reverse DNS name
            self.db = sqlite3.connect(str(self.path), isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a usable reports database: {e}") from None

    @classmethod
    def existing(cls, path: str | Path) -> EvidenceStore | None:
        """Open the store if the file exists (readers never create one)."""
        return cls(path) if Path(path).exists() else None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.version
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: reports database schema version {current} is newer than this "
                f"octodns-mailauth knows ({SCHEMA_VERSION}); upgrade octodns-mailauth"
            )
        for version in range(current, SCHEMA_VERSION):
            with self.transaction():
                MIGRATIONS[version](self.db)
                self.db.execute(f"PRAGMA user_version = {version + 1}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- writing ------------------------------------------------------------------------

    def _add(self, report: Prepared, now: str) -> bool:
        """Claim the report's (kind, org, report id) and queue its rows for `_flush`."""
        cur = self.db.execute(
            'INSERT OR IGNORE INTO report (kind, org, report_id, domain, begin, "end", '
            "format, source, digest, ingested) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*report.report, now),
        )
        if cur.rowcount != 1:
            # Stored before version 3: this copy, read in full, is its digest from now on.
            row = report.report
            self.db.execute(
                "UPDATE report SET digest = ? WHERE kind = ? AND org = ? AND report_id = ? "
                "AND digest = ''",
                (row.digest, row.kind, row.org, row.report_id),
            )
            return False
        self._dmarc_rows += report.dmarc_rows
        self._tls_rows += report.tls_rows
        self._names.update(report.names)
        return True

    def _flush(self) -> None:
        """Write the queued rows: one executemany per table for many reports."""
        dmarc, tls, names = self._dmarc_rows, self._tls_rows, self._names
        self._dmarc_rows, self._tls_rows, self._names = [], [], {}
        if dmarc:
            self.db.executemany(
                "INSERT INTO dmarc_day VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET messages = messages + excluded.messages",
                dmarc,
            )
        if tls:
            self.db.executemany(
                "INSERT INTO tls_day VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET sessions = sessions + excluded.sessions",
                tls,
            )
        for ip, name in names.items():
            self.set_reverse_dns(ip, name)

    def ingest_paths(self, paths: Iterable[str | Path], jobs: int | None = None) -> IngestStats:
        """Read reports from files and folders (`ingest.read_paths`) and store them.
        Reports stored before are known by their header; the rows are built where the
        files are read (in worker processes for many files)."""
        from .ingest import read_paths  # ingest reads files; the store needs it only here

        return self.ingest(read_paths(paths, jobs=jobs, known=self.report_keys(), prepare=prepare))

    def report_keys(self) -> dict[tuple[str, str, str], str]:
        """(kind, organisation, report id) of every report stored, with the digest of
        its document: `read_paths(known=)`."""
        rows = self.db.execute("SELECT kind, org, report_id, digest FROM report")
        return {(kind, org, report_id): digest for kind, org, report_id, digest in rows}

    def ingest(
        self, items: Iterable[Report | Prepared | Refused | Seen], batch: int = 2000
    ) -> IngestStats:
        """Store what `ingest.read_paths` yields, committing every `batch` reports."""
        stats = IngestStats()
        pending = 0
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                if isinstance(item, Refused):
                    stats.refused.append(item)
                    continue
                if isinstance(item, Seen):
                    stats.duplicates += 1
                    continue
                if not isinstance(item, Prepared):
                    item = prepare(item)
                if not self._add(item, now):
                    stats.duplicates += 1
                    continue
                stats.domains.add(item.report.domain)
                if item.report.kind == "dmarc":
                    stats.aggregate += 1
                else:
                    stats.tls += 1
                pending += 1
                if pending >= batch:
                    self._flush()
                    self.db.execute("COMMIT")
                    self.db.execute("BEGIN IMMEDIATE")
                    pending = 0
            self._flush()
        except BaseException:
            self._dmarc_rows, self._tls_rows, self._names = [], [], {}
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return stats

    def set_reverse_dns(self, ip: str, name: str) -> None:
        org = organisation(name) if name else None
        self.db.execute(
            "INSERT INTO source VALUES (?, ?, ?, ?, ?) ON CONFLICT(ip) DO UPDATE SET "
            "reverse_dns = excluded.reverse_dns, base_domain = excluded.base_domain, "
            "org = excluded.org, org_type = excluded.org_type",
            (
                ip,
                name,
                org.base_domain if org else "",
                org.name if org else "",
                org.type if org else "",
            ),
        )

    def sources_without_reverse_dns(self) -> list[str]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT d.source_ip FROM dmarc_day d LEFT JOIN source s "
                "ON s.ip = d.source_ip WHERE s.ip IS NULL ORDER BY 1"
            )
        ]

    # --- reading ------------------------------------------------------------------------

    def evidence(self, domain: str, since: date, until: date) -> Evidence:
        lo, hi = since.isoformat(), until.isoformat()
        rows = [
            EvidenceRow(*r)
            for r in self.db.execute(
                "SELECT d.day, d.source_ip, d.header_from, d.envelope_from, d.spf_domain, "
                "d.spf_result, d.dkim_domain, d.dkim_selector, d.dkim_result, d.dmarc_spf, "
                "d.dmarc_dkim, d.disposition, d.messages, coalesce(s.reverse_dns, ''), "
                "coalesce(s.org, ''), coalesce(s.org_type, '') FROM dmarc_day d "
                "LEFT JOIN source s ON s.ip = d.source_ip "
                "WHERE d.domain = ? AND d.day BETWEEN ? AND ? ORDER BY d.day, d.source_ip",
                (domain, lo, hi),
            )
        ]
        tls = [
            TlsRow(*r)
            for r in self.db.execute(
                "SELECT day, policy_type, mx_host, result_type, sessions FROM tls_day "
                "WHERE domain = ? AND day BETWEEN ? AND ? ORDER BY day, mx_host, result_type",
                (domain, lo, hi),
            )
        ]
        lo_epoch = int(datetime.combine(since, datetime.min.time(), timezone.utc).timestamp())
        hi_epoch = lo_epoch + ((until - since).days + 1) * 86400
        reports = self.db.execute(
            "SELECT count(*) FROM report WHERE kind = 'dmarc' AND domain = ? AND begin >= ? "
            "AND begin < ?",
            (domain, lo_epoch, hi_epoch),
        ).fetchone()[0]
        return Evidence(domain, lo, hi, rows, int(reports), tls)


class ReportRow(NamedTuple):
    """A `report` table row but the time of ingest, in column order."""

    kind: str
    org: str  # lower case
    report_id: str
    domain: str
    begin: int
    end: int
    format: str
    source: str
    digest: str


@dataclass
class Prepared:
    """A report as the store writes it: its `report` row, its day rows and the reverse
    DNS names it carries.  `prepare` is pure, so a worker process that reads the
    report builds it, and only plain tuples travel back."""

    report: ReportRow
    dmarc_rows: list[tuple[Any, ...]]
    tls_rows: list[tuple[Any, ...]]
    names: list[tuple[str, str]]  # (source address, reverse DNS name)


def prepare(report: Report) -> Prepared:
    row = ReportRow(
        report.kind,
        report.org.lower(),
        report.report_id,
        report.domain,
        report.begin,
        report.end,
        report.format,
        report.source,
        report.digest,
    )
    if isinstance(report, AggregateReport):
        dmarc, names = _dmarc_rows(report)
        return Prepared(row, dmarc, [], names)
    return Prepared(row, [], _tls_rows(report), [])


def _dmarc_rows(report: AggregateReport) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    day = day_of(report.begin)
    domain = report.domain
    values = []
    names = []
    for row in report.rows:
        dkim = row.dkim
        # One signature (the usual case) needs no ranking.
        dkim_d, dkim_s, dkim_r = dkim[0] if len(dkim) == 1 else _dkim(row)
        spf = row.spf
        spf_d, spf_r = (spf[0].domain, spf[0].result) if len(spf) == 1 else _spf(row)
        values.append(
            (
                domain,
                day,
                row.source_ip,
                row.header_from,
                row.envelope_from,
                spf_d,
                spf_r,
                dkim_d,
                dkim_s,
                dkim_r,
                row.dmarc_spf,
                row.dmarc_dkim,
                row.disposition,
                row.count,
            )
        )
        if row.reverse_dns:
            names.append((row.source_ip, row.reverse_dns))
    return values, names


def _tls_rows(report: TlsReport) -> list[tuple[Any, ...]]:
    day = day_of(report.begin)
    values: list[tuple[Any, ...]] = []
    for pol in report.policies:
        mx = ",".join(pol.mx_hosts)
        key = (pol.policy_domain, day, pol.policy_type)
        values.append((*key, mx, "success", pol.successes))
        values += [(*key, fd.receiving_mx or mx, fd.result_type, fd.count) for fd in pol.details]
        detailed = sum(fd.count for fd in pol.details)
        if pol.failures > detailed:
            # Failures the summary counts but no detail describes.
            values.append((*key, mx, "unspecified-failure", pol.failures - detailed))
    return values


def _dkim(row: AggregateRow) -> tuple[str, str, str]:
    """The signature that tells most about the source: an aligned pass, any pass, the first."""
    if not row.dkim:
        return "", "", ""
    hf = row.header_from

    def rank(a: object) -> int:
        d = a.domain  # type: ignore[attr-defined]
        near = is_subdomain(hf, d) or is_subdomain(d, hf)
        return (0 if a.result == "pass" else 2) + (0 if near else 1)  # type: ignore[attr-defined]

    best = min(row.dkim, key=rank)
    return best.domain, best.selector, best.result


def _spf(row: AggregateRow) -> tuple[str, str]:
    if not row.spf:
        return row.envelope_from, ""
    best = next((a for a in row.spf if a.scope in ("mfrom", "")), row.spf[0])
    return best.domain, best.result

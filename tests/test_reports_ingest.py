"""Reading DMARC aggregate and SMTP TLS reports into the evidence store.

The samples are parsedmarc's (tests/data/reports, Apache-2.0, see its NOTICE):
every one is either stored or refused with its reason.
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import zipfile
from datetime import date
from pathlib import Path

import pytest
import reports_synth as rs
from reports_synth import message_with_attachment

from octodns_mailauth import _workers
from octodns_mailauth.cli import main
from octodns_mailauth.reports import ingest
from octodns_mailauth.reports.ingest import read_bytes, read_paths
from octodns_mailauth.reports.model import AggregateReport, Refused, Seen, TlsReport, digest
from octodns_mailauth.reports.orgmap import organisation
from octodns_mailauth.reports.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    EvidenceStore,
    StoreError,
)

SAMPLES = Path(__file__).parent / "data" / "reports"
REPORT_DIRS = ["aggregate", "aggregate_invalid", "extract_report", "failure", "smtp_tls"]
WIDE = (date(1970, 1, 1), date(2100, 1, 1))

# What becomes of each sample: stored, duplicate (of a report stored before), or
# refused with (part of) its reason.
EXPECTED = {
    "aggregate/!example.com!1538204542!1538463818.xml": "stored",
    "aggregate/Report domain- borschow.com Submitter- google.com Report-ID- "
    "949348866075514174.eml": "stored",
    "aggregate/addisonfoods.com!example.com!1536105600!1536191999.xml": "stored",
    "aggregate/empty_reason.xml": "stored",
    "aggregate/estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip": (
        "stored"
    ),
    "aggregate/example.net!example.com!1529366400!1529452799.xml": "stored",
    "aggregate/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz": "stored",
    "aggregate/invalid_xml.xml": "refused: not well-formed XML",
    "aggregate/old_draft_from_wiki.xml": "stored",
    "aggregate/rfc9990-example.net!example.com!1700000000!1700086399.xml": "stored",
    "aggregate/rfc9990-sample.xml": "stored",
    "aggregate/twilight.eml": "stored",
    "aggregate/usssa.com!example.com!1538784000!1538870399.xml": "stored",
    "aggregate/veeam.com!example.com!1530133200!1530219600.xml": "stored",
    "aggregate_invalid/report_with_upper_cased_pass.xml": "stored",
    "extract_report/changed-input.xml": "stored",  # same id, another organisation
    "extract_report/nice-input.xml": "stored",
    "extract_report/nice-input.xml.gz": "duplicate",
    "extract_report/nice-input.xml.zip": "duplicate",
    "failure/DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, "
    "ip=10.10.10.10).eml": "refused: a DMARC failure report",
    "failure/[Netease DMARC Failure Report] Rent Reminder.eml": "refused: a DMARC failure report",
    "failure/dmarc_ruf_report_linkedin.crlf.eml": "refused: a DMARC failure report",
    "failure/dmarc_ruf_report_linkedin.eml": "refused: a DMARC failure report",
    "failure/exim_plain_text_only_no_arf_part.eml": "refused: a mail message with no report",
    "smtp_tls/mail.ru.json": "stored",
    "smtp_tls/rfc8460.json": "stored",
    "smtp_tls/smtp_tls.json": "stored",
    "empty.xml": "refused: empty file",
}


def _file_of(source: str) -> str:
    rel = Path(source.split(".eml", 1)[0] + ".eml" if ".eml" in source else source)
    text = str(rel.relative_to(SAMPLES)) if rel.is_absolute() else str(rel)
    for suffix in (".zip:", ".gz:"):
        if suffix in text:
            text = text.split(suffix, 1)[0] + suffix[:-1]
    return text


def test_every_sample_is_stored_or_refused_with_its_reason(tmp_path: Path) -> None:
    paths = [SAMPLES / d for d in REPORT_DIRS] + [SAMPLES / "empty.xml"]
    seen: dict[str, str] = {}
    with EvidenceStore(tmp_path / "e.db") as store:
        for item in read_paths(paths):
            name = _file_of(item.source)
            if isinstance(item, Refused):
                assert "\n" not in item.reason
                seen[name] = "refused: " + item.reason
            else:
                seen[name] = "stored" if store.ingest([item]).stored else "duplicate"
        counts = rs.counts(store)
    assert set(seen) == set(EXPECTED)
    for name, outcome in EXPECTED.items():
        assert seen[name].startswith(outcome), (name, seen[name])
    assert counts["dmarc_reports"] == 16 and counts["tls_reports"] == 3
    stored = sum(v == "stored" for v in EXPECTED.values())
    assert stored == 19
    assert sum(v.startswith("refused") for v in EXPECTED.values()) == 7


def test_ingesting_twice_counts_each_report_once(tmp_path: Path) -> None:
    paths = [SAMPLES / d for d in REPORT_DIRS]
    with EvidenceStore(tmp_path / "e.db") as store:
        first = store.ingest(read_paths(paths))
        before = rs.counts(store)
        second = store.ingest(read_paths(paths))
        assert rs.counts(store) == before
    assert (first.aggregate, first.tls, first.duplicates) == (16, 3, 2)
    assert (second.aggregate, second.tls, second.duplicates) == (0, 0, 21)
    assert before["messages"] > 0


def test_rfc9990_namespace_and_values() -> None:
    (report,) = read_paths([SAMPLES / "aggregate" / "rfc9990-sample.xml"])
    assert isinstance(report, AggregateReport)
    assert report.format == "rfc9990"
    assert (report.org, report.report_id, report.domain) == (
        "Sample Reporter",
        "3v98abbp8ya9n3va8yr8oa3ya",
        "example.com",
    )
    (row,) = report.rows
    assert (row.source_ip, row.count, row.disposition) == ("192.0.2.123", 123, "pass")
    assert (row.dmarc_dkim, row.dmarc_spf) == ("pass", "fail")
    assert row.dkim[0].domain == "example.com" and row.dkim[0].selector == "abc123"
    assert report.policy["np"] == "none"


def test_upper_case_results_are_normalised() -> None:
    (report,) = read_paths([SAMPLES / "aggregate_invalid" / "report_with_upper_cased_pass.xml"])
    assert isinstance(report, AggregateReport)
    row = report.rows[0]
    assert (row.disposition, row.dmarc_dkim, row.dmarc_spf) == ("none", "pass", "pass")
    assert row.spf[0].result == "pass" and row.dkim[0].result == "pass"
    assert report.org == "example.com"


def _xml(rows: str = "", meta: str = "") -> bytes:
    return (
        "<?xml version='1.0'?><feedback><report_metadata><org_name>r.example</org_name>"
        "<email>a@r.example</email><report_id>id-1</report_id>"
        f"<date_range><begin>1700000000</begin><end>1700086399</end></date_range>{meta}"
        "</report_metadata><policy_published><domain>example.com</domain><p>none</p>"
        f"</policy_published>{rows}</feedback>"
    ).encode()


def _row(ip: str = "192.0.2.1", count: str = "3", disposition: str = "none") -> str:
    return (
        f"<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>"
        f"<disposition>{disposition}</disposition><dkim>fail</dkim><spf>pass</spf>"
        "</policy_evaluated></row><identifiers><header_from>example.com</header_from>"
        "</identifiers><auth_results><spf><domain>example.com</domain><result>pass</result>"
        "</spf></auth_results></record>"
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_xml(_row(ip="300.1.2.3")), "record 1: source_ip is '300.1.2.3', not an IP address"),
        (_xml(_row(count="many")), "record 1: count is 'many', not a whole number"),
        (_xml(_row(disposition="bounce")), "record 1: disposition is 'bounce', not one of"),
        (_xml(_row() + _row(count="-1")), "record 2: count is -1, below 0"),
        (b"<feedback/>", "no <report_metadata>"),
        (b"<html><body/></html>", "root is <html>, not a DMARC report's <feedback>"),
        (b"<feedback>", "not well-formed XML"),
        (b'{"organization-name": "x"}', "no date-range object"),
        (b'{"a": 1}', "neither an SMTP TLS report nor parsedmarc output"),
        (b"[]", "an empty JSON list"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
        (b"PK\x03\x04garbage", "broken zip archive"),
        (b"\x00\x01\x02binary", "not a DMARC aggregate or SMTP TLS report"),
    ],
)
def test_malformed_reports_are_refused_with_one_line(data: bytes, reason: str) -> None:
    (item,) = read_bytes(data, "x")
    assert isinstance(item, Refused)
    assert reason in item.reason
    assert "\n" not in item.reason


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>"""


@pytest.mark.parametrize(
    "data", [BILLION_LAUGHS, EXTERNAL, BILLION_LAUGHS.decode().encode("utf-16")]
)
def test_dtd_and_entities_are_refused(data: bytes) -> None:
    (item,) = read_bytes(data, "evil.xml")
    assert isinstance(item, Refused)
    assert "DOCTYPE or entity declaration" in item.reason


def test_decompression_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_REPORT_BYTES", 100_000)
    bomb = gzip.compress(b"<" + b" " * 1_000_000)
    (item,) = read_bytes(bomb, "bomb.xml.gz")
    assert isinstance(item, Refused) and "expands past 100000 bytes" in item.reason
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.xml", b" " * 1_000_000)
    (item,) = read_bytes(buf.getvalue(), "bomb.zip")
    assert isinstance(item, Refused) and "larger than 100000" in item.reason


def test_nesting_is_bounded() -> None:
    data = _xml(_row())
    for _ in range(ingest.MAX_NESTING + 2):
        data = gzip.compress(data)
    (item,) = read_bytes(data, "deep.gz")
    assert isinstance(item, Refused) and "nested deeper" in item.reason


def test_windows_1252_reports_are_decoded() -> None:
    data = _xml(_row()).replace(b"r.example</org_name>", "Réseau</org_name>".encode("cp1252"))
    data = data.replace(b"<?xml version='1.0'?>", b'<?xml version="1.0" encoding="windows-1252"?>')
    (item,) = read_bytes(data, "x.xml")
    assert isinstance(item, AggregateReport) and item.org == "Réseau"


def test_mbox_messages_and_tls_attachments(tmp_path: Path) -> None:
    one = message_with_attachment(gzip.compress(_xml(_row())), "a.xml.gz", "application/gzip")
    tls = json.loads((SAMPLES / "smtp_tls" / "rfc8460.json").read_text())
    two = message_with_attachment(
        gzip.compress(json.dumps(tls).encode()), "tls.json.gz", "application/tlsrpt+gzip"
    )
    mbox = (
        b"From a@b Mon Jan  1 00:00:00 2024\n"
        + one
        + b"\nFrom a@b Mon Jan  1 00:00:00 2024\n"
        + two
    )
    path = tmp_path / "reports.mbox"
    path.write_bytes(mbox)
    items = list(read_paths([path]))
    assert [type(i).__name__ for i in items] == ["AggregateReport", "TlsReport"], items
    assert items[0].source.startswith(f"{path}#1:a.xml.gz")
    with EvidenceStore(tmp_path / "e.db") as store:
        assert store.ingest(items).stored == 2
        ev = store.evidence("company-y.example", *WIDE)
    by_type = {(r.mx_host, r.result_type): r.sessions for r in ev.tls}
    assert by_type[("*.mail.company-y.example", "success")] == 5326
    assert by_type[("mx2.mail.company-y.example", "starttls-not-supported")] == 200
    assert by_type[("mx1.mail.company-y.example", "certificate-expired")] == 100


def _mbox_messages_before(data: bytes) -> list[bytes]:
    """How an mbox was split before the pattern was made searchable by its first byte."""
    import re

    parts = re.split(rb"(?:^|\r?\n)From [^\n]*\n", data)
    return [re.sub(rb"(?m)^>(>*From )", rb"\1", p) for p in parts if p.strip()]


def test_mbox_split_is_as_before_on_generated_mboxes() -> None:
    import random

    rng = random.Random(15)
    pieces = [
        b"From a@b Mon Jan  1 00:00:00 2024",
        b"From ",
        b">From x",
        b">>From y",
        b"From",
        b"body",
        b" From z",
        b"",
        b"\r",
        b"x>From q",
        b"From\r",
        b">From",
        b"Fro",
    ]
    breaks = [b"\n", b"\r\n", b"\n\n", b"\r", b""]
    split = 0
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) + rng.choice(breaks) for _ in range(rng.randrange(12)))
        expected = _mbox_messages_before(data)
        assert ingest.mbox_messages(data) == expected, data
        split += len(expected) > 1
    assert split > 300  # many generated mboxes held several messages


def test_messages_are_parsed_as_by_the_whole_parser_on_generated_messages() -> None:
    import email.parser
    import random
    from email.policy import compat32

    def shape(msg: object) -> tuple:
        return (
            msg._headers,  # type: ignore[attr-defined]
            msg._payload,  # type: ignore[attr-defined]
            msg.get_unixfrom(),  # type: ignore[attr-defined]
            [type(d) for d in msg.defects],  # type: ignore[attr-defined]
        )

    rng = random.Random(15)
    lines = [
        b"From a@b Mon Jan  1 00:00:00 2024",
        b"Subject: x",
        b"Content-Type: text/plain",
        b" folded",
        b"\tfolded",
        b"no header here",
        b"",
        b"X-A:",
        b"body line",
        b"\xe9t\xe9",
        b"Bad Header: y",
        b":",
        b"--b",
        b"From x",
    ]
    breaks = [b"\n", b"\r\n", b"\r", b"\n\n", b"\n\r\n"]
    cut = 0
    for _ in range(3000):
        data = b"".join(rng.choice(lines) + rng.choice(breaks) for _ in range(rng.randrange(10)))
        before = email.parser.BytesParser(policy=compat32).parsebytes(data, headersonly=True)
        assert shape(ingest._parse_message(data)) == shape(before), data
        text = data.decode("latin-1")
        before = email.parser.Parser(policy=compat32).parsestr(text, headersonly=True)
        assert shape(ingest._parse_message(text)) == shape(before), text
        cut += b"\n\n" in data or b"\n\r\n" in data
    assert cut > 1000  # many had a blank line, where the parse is cut


def _parsedmarc(report_id: str = "pm-1") -> dict:
    return {
        "xml_schema": "draft",
        "report_metadata": {
            "org_name": "google.com",
            "org_email": "noreply-dmarc-support@google.com",
            "report_id": report_id,
            "begin_date": "2024-06-13 00:00:00",
            "end_date": "2024-06-13 23:59:59",
            "errors": [],
        },
        "policy_published": {"domain": "example.com", "p": "none", "sp": "none", "pct": "100"},
        "records": [
            {
                "source": {
                    "ip_address": "167.89.1.2",
                    "country": "US",
                    "reverse_dns": "o1.ptr1234.sendgrid.net",
                    "base_domain": "sendgrid.net",
                },
                "count": 7,
                "alignment": {"spf": False, "dkim": True, "dmarc": True},
                "policy_evaluated": {
                    "disposition": "none",
                    "dkim": "pass",
                    "spf": "fail",
                    "policy_override_reasons": [],
                },
                "identifiers": {"header_from": "example.com", "envelope_from": "sendgrid.net"},
                "auth_results": {
                    "dkim": [{"domain": "example.com", "selector": "s1", "result": "pass"}],
                    "spf": [{"domain": "sendgrid.net", "scope": "mfrom", "result": "pass"}],
                },
            }
        ],
    }


def test_parsedmarc_json_with_reverse_dns(tmp_path: Path) -> None:
    path = tmp_path / "aggregate.json"
    path.write_text(json.dumps([_parsedmarc("a"), _parsedmarc("b")]))
    combined = tmp_path / "output.json"
    combined.write_text(
        json.dumps(
            {
                "aggregate_reports": [_parsedmarc("a")],
                "failure_reports": [{}],
                "smtp_tls_reports": [],
            }
        )
    )
    with EvidenceStore(tmp_path / "e.db") as store:
        stats = store.ingest(read_paths([path, combined]))
        ev = store.evidence("example.com", date(2024, 6, 1), date(2024, 6, 30))
    assert (stats.aggregate, stats.duplicates, len(stats.refused)) == (2, 1, 1)
    assert "failure report" in stats.refused[0].reason
    (row,) = ev.rows
    assert row.messages == 14 and row.day == "2024-06-13"
    assert (row.reverse_dns, row.org, row.org_type) == (
        "o1.ptr1234.sendgrid.net",
        "Twilio SendGrid",
        "Marketing",
    )
    assert (row.dkim_domain, row.dkim_selector, row.spf_domain) == (
        "example.com",
        "s1",
        "sendgrid.net",
    )
    assert ev.reports == 2


def test_organisation_map() -> None:
    org = organisation("mail-it1-f201.google.com")
    assert org is not None and org.base_domain == "google.com"
    assert org.name.startswith("Google")
    assert organisation("host.unknown-org.example") is None


def test_reverse_dns_lookup_names_sources(tmp_path: Path) -> None:
    from static_resolver import StaticResolver

    from octodns_mailauth.reports.ingest import lookup_reverse_dns

    resolver = StaticResolver({("1.2.0.192.in-addr.arpa", "PTR"): ["o1.mcsv.net."]})
    with EvidenceStore(tmp_path / "e.db") as store:
        store.ingest([*read_bytes(_xml(_row(ip="192.0.2.1") + _row(ip="192.0.2.9")), "x")])
        assert store.sources_without_reverse_dns() == ["192.0.2.1", "192.0.2.9"]
        assert lookup_reverse_dns(store, resolver) == 1
        assert store.sources_without_reverse_dns() == []
        rows = {r.source_ip: r for r in store.evidence("example.com", *WIDE).rows}
    assert rows["192.0.2.1"].org == "Intuit Mailchimp"
    assert rows["192.0.2.9"].reverse_dns == ""


def test_schema_migrates_from_version_1(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO report VALUES (1, 'dmarc', 'r.example', 'old', 'example.com', 0, 1, "
        "'rfc7489', 'x', 'now')"
    )
    db.commit()
    db.close()
    with EvidenceStore(path) as store:
        assert store.version == SCHEMA_VERSION == 3
        assert rs.counts(store)["dmarc_reports"] == 1
        # Version 3's digest: none for a report stored before (read in full next time).
        assert store.report_keys() == {("dmarc", "r.example", "old"): ""}
        # The table version 2 added works.
        assert store.ingest(read_paths([SAMPLES / "smtp_tls"])).tls == 3


def test_newer_or_foreign_files_are_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this octodns-mailauth knows"):
        EvidenceStore(newer)
    text = tmp_path / "text.db"
    text.write_text("not sqlite at all, just text " * 100)
    with pytest.raises(StoreError, match="not a usable reports database"):
        EvidenceStore(text)


def test_cli_ingest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "e.db"
    argv = ["reports", "ingest", str(SAMPLES / "aggregate"), "--db", str(db)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "invalid_xml.xml: refused: not well-formed XML" in out
    assert "13 DMARC aggregate and 0 SMTP TLS reports stored, 0 already stored" in out
    assert main(argv) == 0
    assert "0 DMARC aggregate and 0 SMTP TLS reports stored, 13 already stored" in (
        capsys.readouterr().out
    )


def test_cli_ingest_needs_a_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reports", "ingest", str(SAMPLES / "aggregate")]) == 2
    assert "no reports database: give --db FILE" in capsys.readouterr().err


def test_items_are_typed() -> None:
    items = list(read_paths([SAMPLES / "smtp_tls" / "mail.ru.json"]))
    assert isinstance(items[0], TlsReport) and items[0].domain == "example.com"


@pytest.mark.pdns
def test_cli_reverse_dns_from_a_real_server(pdns: object, tmp_path: Path) -> None:
    """`--reverse-dns` asks PTR names live: here from the loopback PowerDNS."""
    zone = "131.201.205.in-addr.arpa"
    if f"{zone}." in pdns.zone_names():  # type: ignore[attr-defined]
        pdns.delete_zone(zone)  # type: ignore[attr-defined]
    pdns.create_zone(zone)  # type: ignore[attr-defined]
    rrset = {
        "name": f"98.{zone}.",
        "type": "PTR",
        "changetype": "REPLACE",
        "ttl": 300,
        "records": [{"content": "mail98.atl11.mcsv.net.", "disabled": False}],
    }
    pdns.api("PATCH", f"zones/{zone}.", {"rrsets": [rrset]})  # type: ignore[attr-defined]
    try:
        report = tmp_path / "r.xml"
        report.write_bytes(_xml(_row(ip="205.201.131.98") + _row(ip="198.18.7.7")))
        db = tmp_path / "e.db"
        server = f"{pdns.host}:{pdns.dns_port}"  # type: ignore[attr-defined]
        argv = ["reports", "ingest", str(report), "--db", str(db), "--reverse-dns"]
        assert main([*argv, "--nameserver", server, "--timeout", "2"]) == 0
        with EvidenceStore(db) as store:
            rows = {r.source_ip: r for r in store.evidence("example.com", *WIDE).rows}
            assert store.sources_without_reverse_dns() == []
        assert rows["205.201.131.98"].reverse_dns == "mail98.atl11.mcsv.net"
        assert rows["205.201.131.98"].org == "Intuit Mailchimp"
        assert rows["198.18.7.7"].reverse_dns == ""  # no answer: asked once, not again
    finally:
        pdns.delete_zone(zone)  # type: ignore[attr-defined]


def _parsedmarc_tls(rfc: dict) -> dict:
    """An RFC 8460 report as parsedmarc writes it: flatter, "_" for "-"."""
    return {
        "organization_name": rfc["organization-name"],
        "begin_date": rfc["date-range"]["start-datetime"],
        "end_date": rfc["date-range"]["end-datetime"],
        "contact_info": rfc.get("contact-info"),
        "report_id": rfc["report-id"],
        "policies": [
            {
                "policy_domain": p["policy"]["policy-domain"],
                "policy_type": p["policy"]["policy-type"],
                "policy_strings": p["policy"].get("policy-string"),
                "mx_host_patterns": p["policy"].get("mx-host"),
                "successful_session_count": p["summary"]["total-successful-session-count"],
                "failed_session_count": p["summary"]["total-failure-session-count"],
                "failure_details": [
                    {k.replace("-", "_"): v for k, v in fd.items()}
                    for fd in p.get("failure-details", [])
                ],
            }
            for p in rfc["policies"]
        ],
    }


def test_tls_reports_read_alike_in_both_spellings() -> None:
    """One reader serves RFC 8460's JSON and parsedmarc's: the same report, the same result."""
    rfc = json.loads((SAMPLES / "smtp_tls" / "rfc8460.json").read_text())
    (ours,) = read_bytes(json.dumps(rfc).encode(), "rfc.json")
    (theirs,) = read_bytes(json.dumps(_parsedmarc_tls(rfc)).encode(), "pm.json")
    assert isinstance(ours, TlsReport) and isinstance(theirs, TlsReport), (ours, theirs)
    assert (ours.format, theirs.format) == ("rfc8460", "parsedmarc")
    assert ours.policies == theirs.policies
    assert sum(len(p.details) for p in ours.policies) >= 2
    assert (ours.org, ours.report_id, ours.begin, ours.end) == (
        theirs.org,
        theirs.report_id,
        theirs.begin,
        theirs.end,
    )
    # A missing field is named by its path in the spelling the file uses.
    del rfc["policies"][0]["failure-details"][0]["result-type"]
    pm = _parsedmarc_tls(rfc)
    for doc, path in (
        (rfc, "policies[1].failure-details[1].result-type is None"),
        (pm, "policies[1].failure_details[1].result_type is None"),
    ):
        (item,) = read_bytes(json.dumps(doc).encode(), "x.json")
        assert isinstance(item, Refused) and path in item.reason, item
    del rfc["policies"][0]["summary"]
    (item,) = read_bytes(json.dumps(rfc).encode(), "x.json")
    assert isinstance(item, Refused) and "no policies[1].summary object" in item.reason


def test_indented_namespaced_and_compact_reports_read_alike() -> None:

    sources = rs.example_com_sources()
    rows = [(src, n + 1) for n, src in enumerate(sources)]
    reads = []
    for rfc9990 in (False, True):
        for indent in (False, True):
            data = rs.aggregate_xml(
                "r.example", "id", 1700000000, "example.com", rows, rfc9990=rfc9990, indent=indent
            )
            assert (b"\n  <report_metadata>" in data) is indent
            (report,) = read_bytes(data, "x.xml")
            assert isinstance(report, AggregateReport), report
            reads.append(report)
    assert len(reads[0].rows) == len(sources) == 5
    assert all(r.rows == reads[0].rows for r in reads)
    assert [r.format for r in reads] == ["rfc7489", "rfc7489", "rfc9990", "rfc9990"]
    relay = reads[0].rows[2]
    assert relay.dkim == [
        ("example.com", "relay2026a", "pass"),
        ("example.com", "relay2026r", "pass"),
    ]
    assert relay.spf[0].scope == "mfrom" and relay.envelope_from == "example.com"


def test_record_values_are_trimmed_and_defaulted() -> None:
    """Space around values, odd case, and empty optional results read as the plain values."""
    row = (
        "<record><row><source_ip> 192.0.2.1\n</source_ip><count>\n 3 </count><policy_evaluated>"
        "<disposition> None </disposition><dkim> </dkim><spf>PASS</spf></policy_evaluated>"
        "</row><identifiers><header_from> Example.COM. </header_from></identifiers>"
        "<auth_results><dkim><domain>example.com</domain><selector> S1 </selector>"
        "<result/></dkim><spf><domain>example.com</domain><result> SoftFail</result>"
        "</spf></auth_results></record>"
    )
    (report,) = read_bytes(_xml(row), "x.xml")
    assert isinstance(report, AggregateReport), report
    (r,) = report.rows
    assert (r.source_ip, r.count, r.disposition, r.dmarc_dkim, r.dmarc_spf) == (
        "192.0.2.1",
        3,
        "none",
        "fail",
        "pass",
    )
    assert r.header_from == "example.com"
    assert r.dkim == [("example.com", "s1", "none")]
    assert r.spf == [("example.com", "", "softfail")]
    (bad,) = read_bytes(_xml(row.replace("<dkim> </dkim>", "<dkim> maybe </dkim>")), "x")
    assert isinstance(bad, Refused)
    assert "record 1: dkim is 'maybe', not one of fail, pass" in bad.reason


def _mime_cases() -> list[tuple[str, bytes]]:
    """Messages to read as the stdlib does: the samples and some odd shapes."""
    cases = [(str(p.relative_to(SAMPLES)), p.read_bytes()) for p in sorted(SAMPLES.rglob("*.eml"))]
    report = message_with_attachment(gzip.compress(_xml(_row())), "r.xml.gz", "application/gzip")
    head, _, body = report.partition(b"\n\n")
    boundary = report.split(b'boundary="', 1)[1].split(b'"', 1)[0]
    forwarded = (
        b"From: a@b.example\nSubject: Fwd: report\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="outer"\n\npreamble\n--outer\n'
        b"Content-Type: text/plain\n\nsee attached\n--outer\n"
        b"Content-Type: message/rfc822\n\n" + report + b"\n--outer--\nepilogue\n"
    )
    cases += [
        ("forwarded as message/rfc822", forwarded),
        ("CRLF line ends", report.replace(b"\n", b"\r\n")),
        ("no closing boundary", report.rsplit(b"--" + boundary + b"--", 1)[0]),
        ("padding after a boundary", report.replace(boundary + b"\n", boundary + b" \t\n", 1)),
        (
            "a line that only starts like a boundary",
            head + b"\n\n" + body.replace(b"This is", b"--" + boundary + b"x\nThis is", 1),
        ),
    ]
    return cases


@pytest.mark.parametrize(("name", "data"), _mime_cases(), ids=lambda v: str(v)[:40])
def test_mime_parts_as_the_stdlib_reads_them(name: str, data: bytes) -> None:
    """The multipart splitter (ingest._mime_walk) gives the parts, containers and decoded
    payloads the stdlib's full parse gives, so only the speed differs."""
    import email
    from email.policy import compat32

    def shape(parts: list) -> list:
        return [
            (p.get_content_type(), container, None if container else p.get_payload(decode=True))
            for p, container in parts
        ]

    full = email.message_from_bytes(data, policy=compat32)
    walked = list(ingest._mime_walk(ingest._parse_message(data)))
    assert all(ctype == p.get_content_type() for p, ctype, _ in walked)
    ours = shape([(p, container) for p, _, container in walked])
    theirs = shape([(p, p.is_multipart()) for p in full.walk()])
    assert ours == theirs
    assert len(ours) >= 2, ours


def _chunk_with_pid(entries: list) -> list:
    """ingest._read_chunk, plus a marker naming the process that read the chunk."""
    import os

    return [*_READ_CHUNK(entries), Refused(f"pid {os.getpid()}", "marker")]


_READ_CHUNK = ingest._read_chunk


def test_worker_processes_read_the_same_in_the_same_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    paths = [SAMPLES / d for d in REPORT_DIRS] + [SAMPLES / "empty.xml", SAMPLES / "missing"]
    alone = list(read_paths(paths, jobs=1))
    monkeypatch.setattr(ingest, "CHUNK_FILES", 3)
    monkeypatch.setattr(ingest, "_read_chunk", _chunk_with_pid)
    items = list(read_paths(paths, jobs=2))
    pids = {i.source for i in items if isinstance(i, Refused) and i.reason == "marker"}
    # Several chunks, read by other processes than this one.
    assert len([i for i in items if getattr(i, "reason", "") == "marker"]) >= 8
    assert pids and f"pid {os.getpid()}" not in pids
    items = [i for i in items if getattr(i, "reason", "") != "marker"]
    assert items == alone
    assert len(alone) == 29 and isinstance(alone[-1], Refused)
    assert alone[-1].reason == "no such file or folder"


def test_many_files_are_read_in_workers_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "PARALLEL_MIN_FILES", 4)
    monkeypatch.setattr(_workers, "usable_cpus", lambda: 2)
    monkeypatch.setattr(_workers.os, "getloadavg", lambda: (0.3, 0.0, 0.0))
    calls: list[int] = []
    real = ingest._read_in_workers
    monkeypatch.setattr(
        ingest, "_read_in_workers", lambda e, jobs, *a: calls.append(jobs) or real(e, jobs, *a)
    )
    for n in range(5):
        (tmp_path / f"r{n}.xml").write_bytes(_xml(_row()).replace(b"id-1", f"id-{n}".encode()))
    assert [i.report_id for i in read_paths([tmp_path])] == [f"id-{n}" for n in range(5)]
    assert calls == [2]
    assert len(list(read_paths([tmp_path / "r1.xml", tmp_path / "r2.xml"]))) == 2
    assert calls == [2]  # two files: read here
    assert (ingest.default_jobs(4), ingest.default_jobs(3)) == (2, 1)
    # One per idle CPU: with the CPUs busy, this process reads them.
    monkeypatch.setattr(_workers.os, "getloadavg", lambda: (1.6, 0.0, 0.0))
    assert ingest.default_jobs(5) == 1
    assert len(list(read_paths([tmp_path]))) == 5
    assert calls == [2]


def test_cli_ingest_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outs = []
    for jobs in ("1", "2"):
        db = tmp_path / f"e{jobs}.db"
        argv = ["reports", "ingest", str(SAMPLES), "--db", str(db), "--jobs", jobs]
        assert main(argv) == 0
        outs.append(capsys.readouterr().out.replace(str(db), "DB"))
    assert outs[0] == outs[1]
    assert "16 DMARC aggregate and 3 SMTP TLS reports stored, 2 already stored" in outs[0]
    queries = [
        "SELECT * FROM dmarc_day ORDER BY 1, 2, 3, 4",
        "SELECT * FROM tls_day ORDER BY 1, 2, 3, 4",
        "SELECT * FROM source ORDER BY 1",
        "SELECT kind, org, report_id, source FROM report ORDER BY 1, 2, 3",
    ]
    tables = []
    for jobs in ("1", "2"):
        db = sqlite3.connect(tmp_path / f"e{jobs}.db")
        tables.append([db.execute(q).fetchall() for q in queries])
        db.close()
    assert tables[0] == tables[1] and len(tables[0][0]) > 20 and len(tables[0][1]) > 3
    assert main(["reports", "ingest", str(SAMPLES), "--db", str(db), "--jobs", "0"]) == 2
    assert "--jobs 0: give at least 1" in capsys.readouterr().err


def test_nested_parts_are_bounded() -> None:
    """Multiparts and attached messages within each other are followed only so deep."""
    depth = 200
    data = b"From: a@b.example\nSubject: deep\nMIME-Version: 1.0\n"
    for n in range(depth):
        data += f'Content-Type: multipart/mixed; boundary="b{n}"\n\n--b{n}\n'.encode()
    data += b"Content-Type: application/gzip\n\nnot reached\n"
    data += b"".join(f"--b{n}--\n".encode() for n in reversed(range(depth)))
    (item,) = read_bytes(data, "deep.eml")
    assert isinstance(item, Refused) and "no report attachment" in item.reason, item
    parts = list(ingest._mime_walk(ingest._parse_message(data)))
    assert len(parts) == ingest._MAX_MIME_DEPTH + 1


def test_namespace_name_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from octodns_mailauth.reports import safexml

    monkeypatch.setattr(safexml, "_LOCAL", {})
    monkeypatch.setattr(safexml, "_LOCAL_MAX", 50)
    names = "".join(f"<x{n}/>" for n in range(500))
    root, ns = safexml.parse_xml(f'<feedback xmlns="urn:x">{names}</feedback>'.encode(), 10**6)
    assert ns == "urn:x" and [el.tag for el in root][-1] == "x499"
    assert 0 < len(safexml._LOCAL) <= 51


def test_reports_stored_before_are_known_by_their_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second ingest reads only the header of a report the store holds: the same
    counts and refusals as reading everything again, without the full parse."""
    paths = [SAMPLES / d for d in REPORT_DIRS]
    with EvidenceStore(tmp_path / "e.db") as store:
        store.ingest(read_paths(paths))
        known = store.report_keys()
        full = store.ingest(read_paths(paths))
        parsed: list[int] = []
        real = ingest.parse_xml
        monkeypatch.setattr(ingest, "parse_xml", lambda *a: parsed.append(1) or real(*a))
        items = list(read_paths(paths, known=known))
        assert items == list(read_paths(paths, jobs=2, known=known))
        head = store.ingest(items)
    assert len(known) == 19
    seen = [i for i in items if isinstance(i, Seen)]
    assert len(seen) == 21 and {(s.kind, s.org, s.report_id) for s in seen} == set(known)
    assert (head.aggregate, head.tls, head.duplicates) == (full.aggregate, full.tls, 21)
    assert [(r.source, r.reason) for r in head.refused] == [
        (r.source, r.reason) for r in full.refused
    ]
    assert len(parsed) == 1  # invalid_xml.xml only: its header is not reached
    # A report the store does not hold is read in full and stored.
    old = {("dmarc", "r.example", "id-1"): digest(_xml(_row()))}
    new = _xml(_row()).replace(b"id-1", b"id-new")
    (item,) = read_bytes(new, "new.xml", known=known | old)
    assert isinstance(item, AggregateReport) and item.report_id == "id-new"
    (item,) = read_bytes(_xml(_row()), "old.xml", known=old)
    assert item == Seen("old.xml", "dmarc", "r.example", "id-1")


def test_a_damaged_copy_of_a_stored_report_is_refused_not_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its header names a stored report, but its document is not the one stored: it
    is read in full, and refused with the reason.  An intact copy is still known by
    its header; a copy that differs but reads well is a duplicate."""
    intact = _xml(_row())
    (tmp_path / "a.xml").write_bytes(intact)
    (tmp_path / "b.json").write_text(json.dumps([_parsedmarc("a")]))
    db = tmp_path / "e.db"
    with EvidenceStore(db) as store:
        assert store.ingest_paths([tmp_path / "a.xml", tmp_path / "b.json"]).stored == 2
        before = rs.counts(store)
    damaged = {
        "truncated.xml": intact[: intact.index(b"</record>")],
        "bad-count.xml": intact.replace(b"<count>3<", b"<count>x<"),
        "bad-field.json": json.dumps([_parsedmarc("a") | {"records": "?"}]).encode(),
    }
    for name, data in damaged.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "copy.xml.gz").write_bytes(gzip.compress(intact))
    (tmp_path / "spaced.xml").write_bytes(intact.replace(b"<record>", b"<record>\n  "))
    parsed: list[int] = []
    real = ingest.parse_xml
    monkeypatch.setattr(ingest, "parse_xml", lambda *a: parsed.append(1) or real(*a))
    names = [*damaged, "copy.xml.gz", "spaced.xml"]
    with EvidenceStore(db) as store:
        stats = store.ingest_paths([tmp_path / n for n in names])
        assert rs.counts(store) == before  # nothing added
    refused = {Path(r.source).name.removesuffix("[1]"): r.reason for r in stats.refused}
    assert sorted(refused) == sorted(damaged), stats.refused
    assert "not well-formed XML" in refused["truncated.xml"], refused
    assert "'x', not a whole number" in refused["bad-count.xml"]
    assert (stats.stored, stats.duplicates) == (0, 2)
    assert len(parsed) == 3  # the two damaged XML files and the spaced copy; not the .gz


def test_a_store_of_version_2_learns_digests_from_copies_read_in_full(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_bytes(_xml(_row()))
    db = tmp_path / "e.db"
    with EvidenceStore(db) as store:
        store.ingest_paths([tmp_path / "a.xml"])
        store.db.execute("UPDATE report SET digest = ''")  # as version 2 left it
        assert store.report_keys() == {("dmarc", "r.example", "id-1"): ""}
        (item,) = read_paths([tmp_path / "a.xml"], known=store.report_keys())
        assert isinstance(item, AggregateReport)  # read in full: nothing to compare
        assert store.ingest([item]).duplicates == 1
        (item,) = read_paths([tmp_path / "a.xml"], known=store.report_keys())
    assert item == Seen(str(tmp_path / "a.xml"), "dmarc", "r.example", "id-1")


def test_a_known_header_does_not_bypass_the_declaration_check() -> None:
    evil = _xml(_row()).replace(
        b"<?xml version='1.0'?>", b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "b">]>'
    )
    (item,) = read_bytes(evil, "evil.xml", known={("dmarc", "r.example", "id-1"): digest(evil)})
    assert isinstance(item, Refused) and "DOCTYPE or entity declaration" in item.reason
    utf16 = _xml(_row()).decode().replace("'1.0'?>", "'1.0' encoding='utf-16'?>")
    known = {("dmarc", "r.example", "id-1"): digest(utf16.encode("utf-16"))}
    (item,) = read_bytes(utf16.encode("utf-16"), "u16.xml", known=known)
    assert isinstance(item, AggregateReport)  # UTF-16: never read by the header path

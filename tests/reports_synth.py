"""Synthetic DMARC aggregate reports, written as receivers write them.

`aggregate_xml` serialises a report (RFC 7489-era or RFC 9990 with its
namespace; on one line, or indented as most receivers write it);
`parsedmarc_json` is the same report as parsedmarc writes it, `mbox` puts
messages in one mbox; `month` makes a month of daily reports from several
reporters for a set of sources, in mixed containers (plain XML, gzip, zip,
mail messages); `message_with_attachment`, `gzip_bytes`, and `counts` of what
an evidence store holds.  Used by the gate/suggest tests, the HTML browser test and
bench/bench_reports.py.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from email.message import EmailMessage
from xml.sax.saxutils import escape

from octodns_mailauth.reports.store import EvidenceStore

RFC9990_NS = "urn:ietf:params:xml:ns:dmarc-2.0"


@dataclass
class Source:
    """One sending source as the reports see it, `per_day` messages a day."""

    ip: str
    per_day: int
    envelope_from: str
    spf_result: str
    dkim: list[tuple[str, str, str]] = field(default_factory=list)  # (d=, selector, result)
    dmarc_dkim: str = "fail"
    dmarc_spf: str = "fail"
    header_from: str = ""

    @property
    def passes(self) -> bool:
        return "pass" in (self.dmarc_dkim, self.dmarc_spf)


def _row(src: Source, count: int, domain: str, policy: str) -> str:
    disposition = "none" if src.passes or policy == "none" else policy
    dkim = "".join(
        f"<dkim><domain>{escape(d)}</domain><selector>{escape(s)}</selector>"
        f"<result>{r}</result></dkim>"
        for d, s, r in src.dkim
    )
    return (
        "<record><row>"
        f"<source_ip>{src.ip}</source_ip><count>{count}</count>"
        f"<policy_evaluated><disposition>{disposition}</disposition>"
        f"<dkim>{src.dmarc_dkim}</dkim><spf>{src.dmarc_spf}</spf></policy_evaluated>"
        "</row><identifiers>"
        f"<envelope_from>{escape(src.envelope_from)}</envelope_from>"
        f"<header_from>{escape(src.header_from or domain)}</header_from>"
        f"</identifiers><auth_results>{dkim}"
        f"<spf><domain>{escape(src.envelope_from)}</domain><scope>mfrom</scope>"
        f"<result>{src.spf_result}</result></spf></auth_results></record>"
    )


def aggregate_xml(
    org: str,
    report_id: str,
    begin: int,
    domain: str,
    rows: list[tuple[Source, int]],
    *,
    policy: str = "none",
    rfc9990: bool = False,
    indent: bool = False,
) -> bytes:
    ns = f' xmlns="{RFC9990_NS}"' if rfc9990 else ""
    version = "<version>1.0</version>" if rfc9990 else ""
    body = "".join(_row(src, n, domain, policy) for src, n in rows)
    feedback = (
        f"<feedback{ns}>{version}<report_metadata>"
        f"<org_name>{escape(org)}</org_name><email>noreply-dmarc@{escape(org)}</email>"
        f"<report_id>{escape(report_id)}</report_id><date_range><begin>{begin}</begin>"
        f"<end>{begin + 86399}</end></date_range></report_metadata><policy_published>"
        f"<domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>{policy}</p>"
        f"</policy_published>{body}</feedback>"
    )
    if indent:
        feedback = _indented(feedback)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{feedback}\n'.encode()


_TOKEN = re.compile(r"<[^>]+>|[^<]+")


def _indented(xml: str) -> str:
    """Two spaces a level, each element on its own line, text beside its tags."""
    out: list[str] = []
    depth = 0
    text = False  # the last token was text: its end tag stays on the line
    for token in _TOKEN.findall(xml):
        if token[0] != "<":
            out.append(token)
            text = True
            continue
        if token[1] == "/":
            depth -= 1
            if not text:
                out.append("\n" + "  " * depth)
            out.append(token)
        else:
            out.append(("\n" if out else "") + "  " * depth + token)
            depth += 1
        text = False
    return "".join(out)


def parsedmarc_json(
    org: str, report_id: str, begin: int, domain: str, rows: list[tuple[Source, int]]
) -> dict:
    """The same report as parsedmarc's JSON output writes it (one aggregate report)."""

    def when(epoch: int) -> str:
        return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    return {
        "xml_schema": "draft",
        "report_metadata": {
            "org_name": org,
            "org_email": f"noreply-dmarc@{org}",
            "report_id": report_id,
            "begin_date": when(begin),
            "end_date": when(begin + 86399),
            "errors": [],
        },
        "policy_published": {"domain": domain, "adkim": "r", "aspf": "r", "p": "none"},
        "records": [
            {
                "source": {"ip_address": src.ip, "reverse_dns": None, "base_domain": None},
                "count": count,
                "alignment": {
                    "spf": src.dmarc_spf == "pass",
                    "dkim": src.dmarc_dkim == "pass",
                    "dmarc": src.passes,
                },
                "policy_evaluated": {
                    "disposition": "none",
                    "dkim": src.dmarc_dkim,
                    "spf": src.dmarc_spf,
                    "policy_override_reasons": [],
                },
                "identifiers": {
                    "header_from": src.header_from or domain,
                    "envelope_from": src.envelope_from,
                    "envelope_to": None,
                },
                "auth_results": {
                    "dkim": [{"domain": d, "selector": s, "result": r} for d, s, r in src.dkim],
                    "spf": [
                        {"domain": src.envelope_from, "scope": "mfrom", "result": src.spf_result}
                    ],
                },
            }
            for src, count in rows
        ],
    }


def parsedmarc_file(reports: list[dict]) -> bytes:
    """parsedmarc's aggregate JSON output: a list of reports, indented."""
    return json.dumps(reports, indent=2).encode()


def mbox(messages: list[bytes]) -> bytes:
    """Mail messages in one mbox (mboxrd: body lines starting "From " quoted)."""
    out = []
    for msg in messages:
        body = re.sub(rb"(?m)^(>*From )", rb">\1", msg)
        out.append(b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n" + body.rstrip(b"\n") + b"\n")
    return b"\n".join(out)


def wrap(data: bytes, name: str, kind: int) -> tuple[str, bytes]:
    """One of four containers receivers use: plain XML, gzip, zip, a mail message."""
    if kind == 0:
        return name + ".xml", data
    if kind == 1:
        return name + ".xml.gz", gzip.compress(data, mtime=0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name + ".xml", data)
    if kind == 2:
        return name + ".zip", buf.getvalue()
    return name + ".eml", message_with_attachment(
        buf.getvalue(), name + ".zip", "application/zip", f"Report domain: {name}"
    )


REPORTERS = ("google.com", "outlook.com", "yahoo.com")


def month(
    domain: str,
    sources: list[Source],
    end: date,
    *,
    days: int = 30,
    policy: str = "none",
    reporters: tuple[str, ...] = REPORTERS,
) -> list[tuple[str, bytes]]:
    """Daily reports for `days` days up to `end`, each source's daily volume split
    across the reporters; (file name, content) pairs in mixed containers."""
    files = []
    n = 0
    for offset in range(days):
        day = end - timedelta(days=days - 1 - offset)
        begin = int(datetime.combine(day, time(0), timezone.utc).timestamp())
        for k, org in enumerate(reporters):
            rows = []
            for src in sources:
                share = src.per_day // len(reporters) + (k < src.per_day % len(reporters))
                if share:
                    rows.append((src, share))
            if not rows:
                continue
            data = aggregate_xml(
                org,
                f"{org}-{domain}-{day}",
                begin,
                domain,
                rows,
                policy=policy,
                rfc9990=(n % 2 == 1),
            )
            files.append(wrap(data, f"{org}!{domain}!{begin}!{begin + 86399}", n % 4))
            n += 1
    return files


# The example's (zones/mail/example.com.yaml) declared senders as the reports see them,
# plus two undeclared sources: Mailchimp (recognisable) and an unknown host.
def example_com_sources() -> list[Source]:
    return [
        # office: Microsoft 365 (a range of spf.protection.outlook.com in the SPF lock)
        Source(
            "40.107.22.5",
            40,
            "example.com",
            "pass",
            [("example.com", "selector1", "pass")],
            "pass",
            "pass",
        ),
        # newsletters: SendGrid (a range of sendgrid.net), bounces to sendgrid.net
        Source(
            "167.89.10.20",
            25,
            "sendgrid.net",
            "pass",
            [("example.com", "s1", "pass")],
            "pass",
            "fail",
        ),
        # relay: our own server, dual-signed
        Source(
            "203.0.113.5",
            12,
            "example.com",
            "pass",
            [("example.com", "relay2026a", "pass"), ("example.com", "relay2026r", "pass")],
            "pass",
            "pass",
        ),
        # undeclared, recognisable: Mailchimp signs as mcsv.net, bounces to mcsv.net
        Source(
            "205.201.131.98",
            9,
            "mail98.atl11.mcsv.net",
            "pass",
            [("mcsv.net", "k2", "pass")],
            "fail",
            "fail",
        ),
        # undeclared, unknown: nothing but a failing SPF check for our own domain
        Source("198.18.7.7", 2, "example.com", "fail"),
    ]


def example_net_sources() -> list[Source]:
    """example.net's declared senders only, all aligned: nothing blocks quarantine."""
    return [
        Source(
            "209.85.220.41",
            30,
            "example.net",
            "pass",
            [("example.net", "google", "pass")],
            "pass",
            "pass",
        ),
        Source(
            "54.240.8.9",
            20,
            "bounce.example.net",
            "pass",
            [("example.net", "4mudg6d3mwkdvutvzagwqyqpjmcbhdnz", "pass")],
            "pass",
            "pass",
        ),
        Source(
            "192.0.2.77",
            5,
            "example.net",
            "pass",
            [("example.net", "billing2026", "pass")],
            "pass",
            "pass",
        ),
    ]


def tls_report(
    domain: str,
    day: date,
    successes: int,
    failures: list[tuple[str, str, int]],
    org: str = "google.com",
) -> bytes:
    """An RFC 8460 report for one day: failures as (result-type, receiving MX, sessions)."""
    import json

    return json.dumps(
        {
            "organization-name": org,
            "date-range": {
                "start-datetime": f"{day}T00:00:00Z",
                "end-datetime": f"{day}T23:59:59Z",
            },
            "contact-info": f"smtp-tls-reporting@{org}",
            "report-id": f"{day}_{domain}_{org}",
            "policies": [
                {
                    "policy": {
                        "policy-type": "sts",
                        "policy-string": ["version: STSv1", "mode: enforce"],
                        "policy-domain": domain,
                        "mx-host": [f"*.{domain}"],
                    },
                    "summary": {
                        "total-successful-session-count": successes,
                        "total-failure-session-count": sum(n for _, _, n in failures),
                    },
                    "failure-details": [
                        {
                            "result-type": kind,
                            "sending-mta-ip": "192.0.2.200",
                            "receiving-mx-hostname": mx,
                            "failed-session-count": n,
                        }
                        for kind, mx, n in failures
                    ],
                }
            ],
        }
    ).encode()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed timestamp, so a report written twice is the same bytes."""
    return gzip.compress(data, mtime=0)


def message_with_attachment(
    data: bytes, filename: str, content_type: str, subject: str = "Report"
) -> bytes:
    """A report message as receivers send them."""
    msg = EmailMessage()
    msg["From"] = "noreply-dmarc@receiver.example"
    msg["To"] = "dmarc@example.com"
    msg["Subject"] = subject
    msg.set_content("This is a DMARC aggregate report.")
    maintype, subtype = content_type.split("/", 1)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def counts(store: EvidenceStore) -> dict[str, int]:
    """What the evidence store holds: reports by kind, day rows, messages."""
    q = store.db.execute
    return {
        "dmarc_reports": q("SELECT count(*) FROM report WHERE kind='dmarc'").fetchone()[0],
        "tls_reports": q("SELECT count(*) FROM report WHERE kind='tls'").fetchone()[0],
        "dmarc_rows": q("SELECT count(*) FROM dmarc_day").fetchone()[0],
        "messages": q("SELECT coalesce(sum(messages), 0) FROM dmarc_day").fetchone()[0],
    }

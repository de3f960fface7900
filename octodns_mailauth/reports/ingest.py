"""Read reports as receivers send them.

A file may be XML (RFC 9990, with or without its namespace; RFC 7489-era and
older drafts), JSON (RFC 8460 SMTP TLS reports; parsedmarc's output), gzip or
zip holding either, a mail message (`.eml`) carrying one as an attachment, or
an mbox of such messages.  What a file is comes from its content, not its name.

Everything read is untrusted: XML is parsed with no DTD and no entities
(`safexml.py`), every decompression is bounded, and a report that does not
follow its format is refused with a one-line reason instead of half-read.
"""

from __future__ import annotations

import email
import gzip
import io
import ipaddress
import json
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from email.message import EmailMessage, Message
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import dns.reversename

from ..dns.resolver import DnsError, Resolver
from ..names import normalize
from .model import (
    DISPOSITIONS,
    DKIM_RESULTS,
    DMARC_RESULTS,
    SPF_RESULTS,
    AggregateReport,
    AggregateRow,
    DkimAuth,
    Refused,
    Report,
    SpfAuth,
    TlsFailure,
    TlsPolicy,
    TlsReport,
)
from .safexml import XmlRefused, parse_xml

# Real aggregate reports are kilobytes to a few megabytes; these bound what a
# hostile attachment can make us hold in memory.
MAX_REPORT_BYTES = 64 * 1024 * 1024  # one report, decompressed
MAX_FILE_BYTES = 256 * 1024 * 1024  # one input file as stored (an mbox may be large)
MAX_ZIP_MEMBERS = 100
MAX_NESTING = 4  # message -> zip -> gzip -> report is three

RFC9990_NS = "urn:ietf:params:xml:ns:dmarc-2.0"

Item = AggregateReport | TlsReport | Refused


class _Bad(ValueError):
    """A report that breaks its format: the text is the one-line reason."""


def read_paths(paths: Iterable[str | Path]) -> Iterator[Item]:
    """Every report in these files and folders (folders recursively, in name order)."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from read_file(child)
        elif path.exists():
            yield from read_file(path)
        else:
            yield Refused(str(path), "no such file or folder")


def read_file(path: Path) -> Iterator[Item]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            yield Refused(str(path), f"{size} bytes: larger than the {MAX_FILE_BYTES} allowed")
            return
        data = path.read_bytes()
    except OSError as e:
        yield Refused(str(path), f"cannot read: {e.strerror}")
        return
    yield from read_bytes(data, str(path))


def read_bytes(data: bytes, source: str, depth: int = 0) -> Iterator[Item]:
    """The reports in `data`, found by content.  `source` names it in reasons."""
    if depth > MAX_NESTING:
        yield Refused(source, f"archives nested deeper than {MAX_NESTING} levels")
        return
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        if not head:
            yield Refused(source, "empty file")
        elif data[:2] == b"\x1f\x8b":
            yield from read_bytes(_gunzip(data), source, depth + 1)
        elif data[:4] == b"PK\x03\x04":
            yield from _zip(data, source, depth)
        elif head[:1] == b"<" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            yield _xml_report(data, source)
        elif head[:1] in (b"{", b"["):
            yield from _json_reports(data, source)
        elif head.startswith(b"From "):
            yield from _mbox(data, source, depth)
        elif _looks_like_message(head):
            yield from _message(email.message_from_bytes(data), source, depth)
        else:
            yield Refused(
                source,
                "not a DMARC aggregate or SMTP TLS report (neither XML, JSON, gzip, zip, "
                "nor a mail message)",
            )
    except _Bad as e:
        yield Refused(source, str(e))


# --- containers --------------------------------------------------------------------------


def _gunzip(data: bytes) -> bytes:
    out = io.BytesIO()
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        chunk = d.decompress(data, MAX_REPORT_BYTES + 1)
        out.write(chunk)
        if out.tell() > MAX_REPORT_BYTES or d.unconsumed_tail:
            raise _Bad(f"gzip data expands past {MAX_REPORT_BYTES} bytes")
        out.write(d.flush())
    except zlib.error as e:
        raise _Bad(f"broken gzip data: {e}") from None
    if not d.eof:
        raise _Bad("truncated gzip data")
    return out.getvalue()


def _zip(data: bytes, source: str, depth: int) -> Iterator[Item]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise _Bad(f"broken zip archive: {e}") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise _Bad(f"zip archive with {len(members)} files (at most {MAX_ZIP_MEMBERS})")
    if not members:
        raise _Bad("empty zip archive")
    for member in members:
        where = f"{source}:{member.filename}"
        if member.file_size > MAX_REPORT_BYTES:
            yield Refused(where, f"{member.file_size} bytes: larger than {MAX_REPORT_BYTES}")
            continue
        try:
            with archive.open(member) as fh:
                content = fh.read(MAX_REPORT_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, zlib.error) as e:
            yield Refused(where, f"cannot unpack: {e}")
            continue
        if len(content) > MAX_REPORT_BYTES:
            yield Refused(where, f"expands past {MAX_REPORT_BYTES} bytes")
            continue
        yield from read_bytes(content, where, depth + 1)


_HEADER = re.compile(rb"^[!-9;-~]+:[ \t]?")


def _looks_like_message(head: bytes) -> bool:
    return bool(_HEADER.match(head))


def _mbox(data: bytes, source: str, depth: int) -> Iterator[Item]:
    # mboxo/mboxrd: a message starts at a line "From " (at the start or after a newline).
    parts = re.split(rb"(?:^|\r?\n)From [^\n]*\n", data)
    messages = [p for p in parts if p.strip()]
    for n, raw in enumerate(messages, 1):
        # mboxrd quotes body lines that start with "From " as ">From ".
        raw = re.sub(rb"(?m)^>(>*From )", rb"\1", raw)
        msg = email.message_from_bytes(raw)
        yield from _message(msg, f"{source}#{n}", depth)


_REPORT_TYPES = {
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "application/x-zip-compressed",
    "application/x-zip",
    "application/xml",
    "text/xml",
    "application/json",
    "application/tlsrpt+json",
    "application/tlsrpt+gzip",
    "application/octet-stream",
}


def _message(msg: Message, source: str, depth: int) -> Iterator[Item]:
    """The report attachments of one mail message (RFC 9990 §4 / RFC 8460 §5.3).
    Messages are parsed with the compat32 policy: several times faster than
    email.policy.default, and attachments need none of its header objects."""
    if _is_failure_report(msg):
        yield Refused(
            source,
            "a DMARC failure report (RFC 9991 / RFC 6591 feedback report): it describes "
            "single messages, not aggregate evidence; not stored",
        )
        return
    found = False
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = part.get_filename() or ""
        if ctype not in _REPORT_TYPES and not filename.lower().endswith(
            (".xml", ".gz", ".zip", ".json")
        ):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        found = True
        yield from read_bytes(payload, f"{source}:{filename or ctype}", depth + 1)
    if not found:
        subject = str(msg.get("subject", "") or "")[:80]
        yield Refused(
            source,
            "a mail message with no report attachment (no XML, JSON, gzip or zip part)"
            + (f"; subject {subject!r}" if subject else ""),
        )


def _is_failure_report(msg: Message) -> bool:
    ctype = msg.get_content_type()
    if ctype == "multipart/report":
        return str(msg.get_param("report-type", "")).lower() == "feedback-report"
    return any(p.get_content_type() == "message/feedback-report" for p in msg.walk())


# --- DMARC aggregate XML -----------------------------------------------------------------


def _text(el: Element | None, path: str) -> str:
    # Tags are local names (safexml strips namespaces), so ElementPath finds them.
    return (el.findtext(path) or "").strip() if el is not None else ""


def _xml_report(data: bytes, source: str) -> Item:
    try:
        root, ns = parse_xml(data, MAX_REPORT_BYTES)
    except XmlRefused as e:
        return Refused(source, str(e))
    if root.tag != "feedback":
        return Refused(source, f"XML whose root is <{root.tag}>, not a DMARC report's <feedback>")
    try:
        return _aggregate(root, ns, source)
    except _Bad as e:
        return Refused(source, str(e))


def _int(text: str, what: str, low: int = 0) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise _Bad(f"{what} is {text!r}, not a whole number") from None
    if value < low:
        raise _Bad(f"{what} is {value}, below {low}")
    return value


def _enum(text: str, allowed: frozenset[str], what: str) -> str:
    # Receivers write `Pass` and `PASS` too; the values themselves are fixed.
    value = text.strip().lower()
    if value not in allowed:
        raise _Bad(f"{what} is {text!r}, not one of {', '.join(sorted(allowed))}")
    return value


@lru_cache(maxsize=65536)
def _canonical_ip(text: str) -> str | None:
    # Cached: a month of reports names the same few thousand sources again and again.
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def _ip(text: str, what: str) -> str:
    ip = _canonical_ip(text)
    if ip is None:
        raise _Bad(f"{what} is {text!r}, not an IP address")
    return ip


@lru_cache(maxsize=65536)
def _domain(text: str) -> str:
    return normalize(text.strip())


def _aggregate(root: Element, ns: str, source: str) -> AggregateReport:
    meta = root.find("report_metadata")
    if meta is None:
        raise _Bad("no <report_metadata>: not an aggregate report")
    org = _text(meta, "org_name")
    mail = _text(meta, "email")
    report_id = _text(meta, "report_id")
    if not report_id:
        raise _Bad("no <report_id> in <report_metadata>")
    if not org:
        # RFC 9990 requires org_name; some reporters leave it empty.  The
        # reporting address still tells one reporter from another (for dedup).
        org = mail.rpartition("@")[2].lower() if mail else ""
        if not org:
            raise _Bad("no <org_name> and no <email> in <report_metadata>")
    begin = _int(_text(meta, "date_range/begin"), "date_range/begin")
    end = _int(_text(meta, "date_range/end"), "date_range/end")
    if end < begin:
        raise _Bad(f"date_range ends ({end}) before it begins ({begin})")
    published = root.find("policy_published")
    domain = _domain(_text(published, "domain"))
    if not domain:
        raise _Bad("no <policy_published><domain>")
    policy = {c.tag: (c.text or "").strip() for c in (published if published is not None else [])}
    version = _text(root, "version")
    fmt = "rfc9990" if ns == RFC9990_NS or version.startswith("2") else "rfc7489"
    rows = [_record(rec, n) for n, rec in enumerate(root.iterfind("record"), 1)]
    return AggregateReport(
        org=org.strip(),
        report_id=report_id,
        begin=begin,
        end=end,
        domain=domain,
        rows=rows,
        format=fmt,
        email=mail,
        policy=policy,
        source=source,
    )


def _kids(el: Element | None) -> dict[str, Element]:
    """Children by tag (the first of each), in one pass: faster than a find per field."""
    out: dict[str, Element] = {}
    if el is not None:
        for c in el:
            out.setdefault(c.tag, c)
    return out


def _t(kids: dict[str, Element], tag: str) -> str:
    el = kids.get(tag)
    return (el.text or "").strip() if el is not None else ""


def _record(rec: Element, n: int) -> AggregateRow:
    try:
        return _record_fields(rec)
    except _Bad as e:
        # Numbered here, on error only: formatting it for every field costs time.
        raise _Bad(f"record {n}: {e}") from None


def _record_fields(rec: Element) -> AggregateRow:
    parts = _kids(rec)
    if "row" not in parts:
        raise _Bad("no <row>")
    row = _kids(parts["row"])
    evaluated = _kids(row.get("policy_evaluated"))
    ident = _kids(parts.get("identifiers"))
    header_from = _domain(_t(ident, "header_from"))
    if not header_from:
        raise _Bad("no <identifiers><header_from>")
    dkim = []
    spf = []
    auth = parts.get("auth_results")
    for el in auth if auth is not None else ():
        kids = _kids(el)
        d = _domain(_t(kids, "domain"))
        if not d:
            continue
        if el.tag == "dkim":
            result = _enum(_t(kids, "result") or "none", DKIM_RESULTS, "dkim result")
            dkim.append(DkimAuth(d, _t(kids, "selector").lower(), result))
        elif el.tag == "spf":
            result = _enum(_t(kids, "result") or "none", SPF_RESULTS, "spf result")
            spf.append(SpfAuth(d, _t(kids, "scope").lower(), result))
    return AggregateRow(
        source_ip=_ip(_t(row, "source_ip"), "source_ip"),
        count=_int(_t(row, "count"), "count"),
        disposition=_enum(_t(evaluated, "disposition"), DISPOSITIONS, "disposition"),
        dmarc_dkim=_enum(_t(evaluated, "dkim") or "fail", DMARC_RESULTS, "dkim"),
        dmarc_spf=_enum(_t(evaluated, "spf") or "fail", DMARC_RESULTS, "spf"),
        header_from=header_from,
        envelope_from=_domain(_t(ident, "envelope_from")),
        dkim=dkim,
        spf=spf,
    )


# --- JSON: RFC 8460 and parsedmarc -------------------------------------------------------


def _json_reports(data: bytes, source: str) -> Iterator[Item]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise _Bad(f"not valid JSON: {e}") from None
    if isinstance(doc, dict) and any(
        k in doc for k in ("aggregate_reports", "smtp_tls_reports", "failure_reports")
    ):
        # parsedmarc's combined output.
        for key in ("aggregate_reports", "smtp_tls_reports"):
            for n, item in enumerate(doc.get(key) or [], 1):
                yield _json_one(item, f"{source}:{key}[{n}]")
        failures = doc.get("failure_reports") or doc.get("forensic_reports") or []
        for n, _item in enumerate(failures, 1):
            yield Refused(
                f"{source}:failure_reports[{n}]",
                "a DMARC failure report: it describes single messages, not aggregate "
                "evidence; not stored",
            )
        return
    if isinstance(doc, list):
        if not doc:
            raise _Bad("an empty JSON list: no reports")
        for n, item in enumerate(doc, 1):
            yield _json_one(item, f"{source}[{n}]")
        return
    yield _json_one(doc, source)


def _json_one(doc: Any, source: str) -> Item:
    try:
        if not isinstance(doc, dict):
            raise _Bad(f"a JSON {type(doc).__name__} where a report object belongs")
        if "organization-name" in doc or "date-range" in doc:
            return _tls_rfc8460(doc, source)
        if "report_metadata" in doc:
            return _parsedmarc_aggregate(doc, source)
        if "organization_name" in doc and "policies" in doc:
            return _parsedmarc_tls(doc, source)
        if doc.get("report_type") in ("aggregate", "smtp_tls") and "report" in doc:
            return _json_one(doc["report"], source)
        keys = ", ".join(sorted(map(str, doc))[:6])
        raise _Bad(f"JSON that is neither an SMTP TLS report nor parsedmarc output (keys: {keys})")
    except _Bad as e:
        return Refused(source, str(e))
    except (KeyError, TypeError, AttributeError) as e:
        return Refused(source, f"a report with a missing or mistyped field: {e}")


def _time(text: Any, what: str) -> int:
    if not isinstance(text, str):
        raise _Bad(f"{what} is {text!r}, not a date-time")
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        raise _Bad(f"{what} is {text!r}, not an RFC 3339 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # parsedmarc writes UTC without a zone
    return int(when.timestamp())


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Bad(f"{what} is {value!r}, not a count")
    return _int(str(value), what)


def _str(value: Any, what: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Bad(f"{what} is {value!r}, expected text")
    return value.strip()


def _mx_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise _Bad(f"mx-host is {value!r}, expected a name or a list of names")
    return [_domain(str(v)) for v in items if str(v).strip()]


def _tls_rfc8460(doc: dict[str, Any], source: str) -> TlsReport:
    dates = doc.get("date-range")
    if not isinstance(dates, dict):
        raise _Bad("no date-range object")
    policies_in = doc.get("policies")
    if not isinstance(policies_in, list) or not policies_in:
        raise _Bad("no policies list")
    policies = []
    for n, item in enumerate(policies_in, 1):
        where = f"policies[{n}]"
        if not isinstance(item, dict) or not isinstance(item.get("policy"), dict):
            raise _Bad(f"{where}: no policy object")
        pol = item["policy"]
        summary = item.get("summary")
        if not isinstance(summary, dict):
            raise _Bad(f"{where}: no summary object")
        details = []
        for m, fd in enumerate(item.get("failure-details") or [], 1):
            w = f"{where}.failure-details[{m}]"
            if not isinstance(fd, dict):
                raise _Bad(f"{w}: not an object")
            details.append(
                TlsFailure(
                    _str(fd.get("result-type"), f"{w}.result-type").lower(),
                    _count(fd.get("failed-session-count"), f"{w}.failed-session-count"),
                    _domain(_str(fd.get("receiving-mx-hostname"), "mx", required=False)),
                    _str(fd.get("sending-mta-ip"), "ip", required=False),
                    _str(fd.get("receiving-ip"), "ip", required=False),
                    _str(fd.get("failure-reason-code"), "reason", required=False)[:200],
                )
            )
        policies.append(
            TlsPolicy(
                _str(pol.get("policy-type"), f"{where}.policy-type").lower(),
                _domain(_str(pol.get("policy-domain"), f"{where}.policy-domain")),
                _mx_list(pol.get("mx-host")),
                _count(
                    summary.get("total-successful-session-count"),
                    f"{where}.summary.total-successful-session-count",
                ),
                _count(
                    summary.get("total-failure-session-count"),
                    f"{where}.summary.total-failure-session-count",
                ),
                details,
            )
        )
    return TlsReport(
        org=_str(doc.get("organization-name"), "organization-name"),
        report_id=_str(doc.get("report-id"), "report-id"),
        begin=_time(dates.get("start-datetime"), "date-range.start-datetime"),
        end=_time(dates.get("end-datetime"), "date-range.end-datetime"),
        policies=policies,
        format="rfc8460",
        source=source,
    )


def _parsedmarc_tls(doc: dict[str, Any], source: str) -> TlsReport:
    policies = []
    for n, pol in enumerate(doc.get("policies") or [], 1):
        where = f"policies[{n}]"
        details = [
            TlsFailure(
                _str(fd.get("result_type"), f"{where}.result_type").lower(),
                _count(fd.get("failed_session_count"), f"{where}.failed_session_count"),
                _domain(str(fd.get("receiving_mx_hostname") or "")),
                str(fd.get("sending_mta_ip") or ""),
                str(fd.get("receiving_ip") or ""),
                str(fd.get("failure_reason_code") or "")[:200],
            )
            for fd in pol.get("failure_details") or []
        ]
        policies.append(
            TlsPolicy(
                _str(pol.get("policy_type"), f"{where}.policy_type").lower(),
                _domain(_str(pol.get("policy_domain"), f"{where}.policy_domain")),
                _mx_list(pol.get("mx_host_patterns")),
                _count(pol.get("successful_session_count"), f"{where}.successful_session_count"),
                _count(pol.get("failed_session_count"), f"{where}.failed_session_count"),
                details,
            )
        )
    if not policies:
        raise _Bad("no policies")
    return TlsReport(
        org=_str(doc.get("organization_name"), "organization_name"),
        report_id=_str(doc.get("report_id"), "report_id"),
        begin=_time(doc.get("begin_date"), "begin_date"),
        end=_time(doc.get("end_date"), "end_date"),
        policies=policies,
        format="parsedmarc",
        source=source,
    )


def _parsedmarc_aggregate(doc: dict[str, Any], source: str) -> AggregateReport:
    meta = doc["report_metadata"]
    published = doc.get("policy_published") or {}
    domain = _domain(_str(published.get("domain"), "policy_published.domain"))
    rows = []
    for n, rec in enumerate(doc.get("records") or [], 1):
        where = f"records[{n}]"
        src = rec.get("source") or {}
        evaluated = rec.get("policy_evaluated") or {}
        ident = rec.get("identifiers") or {}
        auth = rec.get("auth_results") or {}
        rows.append(
            AggregateRow(
                source_ip=_ip(_str(src.get("ip_address"), f"{where}.source.ip_address"), where),
                count=_count(rec.get("count"), f"{where}.count"),
                disposition=_enum(
                    str(evaluated.get("disposition") or ""), DISPOSITIONS, f"{where}.disposition"
                ),
                dmarc_dkim=_enum(str(evaluated.get("dkim") or "fail"), DMARC_RESULTS, where),
                dmarc_spf=_enum(str(evaluated.get("spf") or "fail"), DMARC_RESULTS, where),
                header_from=_domain(_str(ident.get("header_from"), f"{where}.header_from")),
                envelope_from=_domain(str(ident.get("envelope_from") or "")),
                dkim=[
                    DkimAuth(
                        _domain(str(a.get("domain") or "")),
                        str(a.get("selector") or "").lower(),
                        _enum(str(a.get("result") or "none"), DKIM_RESULTS, f"{where}.dkim"),
                    )
                    for a in auth.get("dkim") or []
                    if a.get("domain")
                ],
                spf=[
                    SpfAuth(
                        _domain(str(a.get("domain") or "")),
                        str(a.get("scope") or "").lower(),
                        _enum(str(a.get("result") or "none"), SPF_RESULTS, f"{where}.spf"),
                    )
                    for a in auth.get("spf") or []
                    if a.get("domain")
                ],
                reverse_dns=_domain(str(src.get("reverse_dns") or "")),
            )
        )
    email_addr = str(meta.get("org_email") or "")
    org = str(meta.get("org_name") or "").strip() or email_addr.rpartition("@")[2]
    if not org:
        raise _Bad("report_metadata has no org_name and no org_email")
    return AggregateReport(
        org=org,
        report_id=_str(meta.get("report_id"), "report_metadata.report_id"),
        begin=_time(meta.get("begin_date"), "report_metadata.begin_date"),
        end=_time(meta.get("end_date"), "report_metadata.end_date"),
        domain=domain,
        rows=rows,
        format="parsedmarc",
        email=email_addr,
        policy={str(k): str(v) for k, v in published.items() if v is not None},
        source=source,
    )


def lookup_reverse_dns(store: Any, resolver: Resolver) -> int:
    """Ask the PTR name of each source address the store cannot name yet (in
    parallel), and store it with its organisation.  Returns how many have one."""
    ips = store.sources_without_reverse_dns()
    names = {ip: dns.reversename.from_address(ip).to_text(omit_final_dot=True) for ip in ips}
    resolver.prefetch((n, "PTR") for n in names.values())
    found = 0
    with store.transaction():
        for ip, ptr in names.items():
            try:
                answers = resolver.query(ptr, "PTR")
            except DnsError:
                answers = []
            name = normalize(sorted(answers)[0]) if answers else ""
            found += bool(name)
            # Stored even when empty, so the address is not asked again each run.
            store.set_reverse_dns(ip, name)
    return found


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed timestamp (tests and the benchmark write reports with it)."""
    return gzip.compress(data, mtime=0)


def message_with_attachment(
    data: bytes, filename: str, content_type: str, subject: str = "Report"
) -> bytes:
    """A report message as receivers send them (tests and the benchmark)."""
    msg = EmailMessage()
    msg["From"] = "noreply-dmarc@receiver.example"
    msg["To"] = "dmarc@example.com"
    msg["Subject"] = subject
    msg.set_content("This is a DMARC aggregate report.")
    maintype, subtype = content_type.split("/", 1)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


__all__ = ["Item", "Refused", "Report", "read_bytes", "read_file", "read_paths"]

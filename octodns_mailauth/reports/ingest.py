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
import email.parser
import io
import ipaddress
import json
import re
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.policy import compat32
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import dns.reversename

from .._workers import idle_cpus
from ..dns.resolver import DnsError, Resolver
from ..names import normalize
from .model import (
    DISPOSITIONS,
    DKIM_RESULTS,
    DMARC_RESULTS,
    NOTHING_KNOWN,
    SPF_RESULTS,
    AggregateReport,
    AggregateRow,
    DkimAuth,
    Known,
    Refused,
    Report,
    Seen,
    SpfAuth,
    TlsFailure,
    TlsPolicy,
    TlsReport,
    digest,
)
from .safexml import XmlRefused, parse_head, parse_xml

# Real aggregate reports are kilobytes to a few megabytes; these bound what a
# hostile attachment can make us hold in memory.
MAX_REPORT_BYTES = 64 * 1024 * 1024  # one report, decompressed
MAX_FILE_BYTES = 256 * 1024 * 1024  # one input file as stored (an mbox may be large)
MAX_ZIP_MEMBERS = 100
MAX_NESTING = 4  # message -> zip -> gzip -> report is three

RFC9990_NS = "urn:ietf:params:xml:ns:dmarc-2.0"

Item = AggregateReport | TlsReport | Refused | Seen


class _Bad(ValueError):
    """A report that breaks its format: the text is the one-line reason."""


# Reading is CPU-bound (decompressing, parsing), so many files are read in worker
# processes, one per idle CPU; fewer than this are read here, as starting workers costs
# more.  What comes back is cheap to hand over when `prepare` makes it plain tuples, but
# on a machine whose CPUs are all busy, more processes only add switching: one is faster.
PARALLEL_MIN_FILES = 64
CHUNK_FILES = 32  # files a worker reads per task: few round trips, yet even shares


def read_paths(
    paths: Iterable[str | Path],
    jobs: int | None = None,
    known: Known | None = None,
    prepare: Callable[[Report], Any] | None = None,
) -> Iterator[Item | Any]:
    """Every report in these files and folders (folders recursively, in name order),
    in the same order whatever the number of worker processes (`jobs`).

    A report in `known` whose document has the digest stored is read only as far as
    its header and comes back as `Seen` (ingesting a mailbox again each day is mostly
    such reports).  `prepare` (`store.prepare`) is applied to each report in the
    worker that reads it, so only plain tuples travel back.
    """
    entries = list(_entries(paths))
    known = known or NOTHING_KNOWN
    if jobs is None:
        jobs = default_jobs(len(entries))
    if jobs <= 1 or len(entries) < 2:
        for entry in entries:
            yield from _read_entry(entry, known, prepare)
        return
    yield from _read_in_workers(entries, jobs, known, prepare)


def _entries(paths: Iterable[str | Path]) -> Iterator[Path | Refused]:
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.exists():
            yield path
        else:
            yield Refused(str(path), "no such file or folder")


def default_jobs(files: int) -> int:
    """For many files one worker process per idle CPU (_workers.py), else 1 (read
    in this process)."""
    return 1 if files < PARALLEL_MIN_FILES else idle_cpus()


def _read_entry(
    entry: Path | Refused, known: Known, prepare: Callable[[Report], Any] | None
) -> Iterator[Item | Any]:
    if isinstance(entry, Refused):
        yield entry
        return
    for item in read_file(entry, known):
        yield prepare(item) if prepare and isinstance(item, AggregateReport | TlsReport) else item


# A worker process's copy of read_paths' `known` and `prepare`, sent once at its start.
_worker: tuple[Known, Callable[[Report], Any] | None] = (NOTHING_KNOWN, None)


def _start_worker(known: Known, prepare: Callable[[Report], Any] | None) -> None:
    global _worker
    _worker = (known, prepare)


def _read_chunk(entries: list[Path | Refused]) -> list[Item | Any]:
    """What a worker process does: read some files, hand back all they hold."""
    return [item for entry in entries for item in _read_entry(entry, *_worker)]


def _read_in_workers(
    entries: list[Path | Refused],
    jobs: int,
    known: Known,
    prepare: Callable[[Report], Any] | None,
) -> Iterator[Item | Any]:
    chunks = [entries[i : i + CHUNK_FILES] for i in range(0, len(entries), CHUNK_FILES)]
    todo = iter(chunks)
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)),
        initializer=_start_worker,
        initargs=(known, prepare),
    )
    try:
        # In order, and only a few chunks ahead of the consumer (the store), so
        # memory stays bounded however many files there are.
        ahead = deque(pool.submit(_read_chunk, c) for c in islice(todo, 4 * jobs))
        while ahead:
            items = ahead.popleft().result()
            for chunk in islice(todo, 1):
                ahead.append(pool.submit(_read_chunk, chunk))
            yield from items
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def read_file(path: Path, known: Known = NOTHING_KNOWN) -> Iterator[Item]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            yield Refused(str(path), f"{size} bytes: larger than the {MAX_FILE_BYTES} allowed")
            return
        data = path.read_bytes()
    except OSError as e:
        yield Refused(str(path), f"cannot read: {e.strerror}")
        return
    yield from read_bytes(data, str(path), known=known)


def read_bytes(
    data: bytes, source: str, depth: int = 0, known: Known = NOTHING_KNOWN
) -> Iterator[Item]:
    """The reports in `data`, found by content.  `source` names it in reasons."""
    if depth > MAX_NESTING:
        yield Refused(source, f"archives nested deeper than {MAX_NESTING} levels")
        return
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        if not head:
            yield Refused(source, "empty file")
        elif data[:2] == b"\x1f\x8b":
            yield from read_bytes(_gunzip(data), source, depth + 1, known)
        elif data[:4] == b"PK\x03\x04":
            yield from _zip(data, source, depth, known)
        elif head[:1] == b"<" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            yield _xml_report(data, source, known)
        elif head[:1] in (b"{", b"["):
            yield from _json_reports(data, source, known)
        elif head.startswith(b"From "):
            yield from _mbox(data, source, depth, known)
        elif _HEADER.match(head):
            yield from _message(_parse_message(data), source, depth, known)
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
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, MAX_REPORT_BYTES + 1)
        if len(out) > MAX_REPORT_BYTES or d.unconsumed_tail:
            raise _Bad(f"gzip data expands past {MAX_REPORT_BYTES} bytes")
        out += d.flush()
    except zlib.error as e:
        raise _Bad(f"broken gzip data: {e}") from None
    if not d.eof:
        raise _Bad("truncated gzip data")
    return out


def _zip(data: bytes, source: str, depth: int, known: Known) -> Iterator[Item]:
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
        yield from read_bytes(content, where, depth + 1, known)


_HEADER = re.compile(rb"^[!-9;-~]+:[ \t]?")  # a mail message starts with a header field


def _mbox(data: bytes, source: str, depth: int, known: Known) -> Iterator[Item]:
    for n, raw in enumerate(mbox_messages(data), 1):
        yield from _message(_parse_message(raw), f"{source}#{n}", depth, known)


# mboxo/mboxrd: a message starts at a line "From " (at the start, or after a line break,
# which goes with it).  A pattern that starts with "\n" is searched for by that byte;
# one that could start at a "\r" or the start too was tried at every byte (a third of
# the time of reading an mbox).
_FIRST_FROM_LINE = re.compile(rb"From [^\n]*\n")
_FROM_LINE = re.compile(rb"\nFrom [^\n]*\n")
_QUOTED_FROM = re.compile(rb"(?m)^>(>*From )")


def mbox_messages(data: bytes) -> list[bytes]:
    """The messages of an mbox, each with mboxrd's quoting of body lines that start
    with "From " (as ">From ") undone."""
    first = _FIRST_FROM_LINE.match(data)
    parts = _FROM_LINE.split(data[first.end() :] if first else data)
    messages = []
    for i, part in enumerate(parts):
        if i < len(parts) - 1 and part.endswith(b"\r"):
            part = part[:-1]  # the "\r" of the "\r\n" before a From line
        if part.strip():
            # Every quoted line holds ">From ": the pattern runs only where one may match.
            messages.append(_QUOTED_FROM.sub(rb"\1", part) if b">From " in part else part)
    return messages


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


def _message(msg: Message, source: str, depth: int, known: Known) -> Iterator[Item]:
    """The report attachments of one mail message (RFC 9990 §4 / RFC 8460 §5.3)."""
    parts = list(_mime_walk(msg))
    if _is_failure_report(parts):
        yield Refused(
            source,
            "a DMARC failure report (RFC 9991 / RFC 6591 feedback report): it describes "
            "single messages, not aggregate evidence; not stored",
        )
        return
    found = False
    for part, ctype, container in parts:
        if container:
            continue
        filename = part.get_filename() or ""
        if ctype not in _REPORT_TYPES and not filename.lower().endswith(
            (".xml", ".gz", ".zip", ".json")
        ):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        found = True
        yield from read_bytes(payload, f"{source}:{filename or ctype}", depth + 1, known)
    if not found:
        subject = str(msg.get("subject", "") or "")[:80]
        yield Refused(
            source,
            "a mail message with no report attachment (no XML, JSON, gzip or zip part)"
            + (f"; subject {subject!r}" if subject else ""),
        )


def _is_failure_report(parts: list[tuple[Message, str, bool]]) -> bool:
    top, ctype, _ = parts[0]
    if ctype == "multipart/report":
        return str(top.get_param("report-type", "")).lower() == "feedback-report"
    return any(c == "message/feedback-report" for _, c, _ in parts)


# --- MIME ----------------------------------------------------------------------------------
#
# The stdlib parses headers, parameters and transfer encodings (compat32 policy: several
# times faster than email.policy.default, and attachments need none of its header
# objects).  Multipart bodies are split here: the stdlib's full parse compiles a regular
# expression for every boundary it meets (each message has its own), which was half the
# cost of reading a report that arrives by mail.

_MAX_MIME_DEPTH = 8  # multiparts and attached messages within one message


def _parse_message(data: bytes | str) -> Message:
    """A message's headers; its body stays one string until `_mime_walk` splits it."""
    if isinstance(data, bytes):
        data = data.decode("ascii", "surrogateescape")  # as email's BytesParser does
    # The parser reads a body line by line only to join the lines again, so it is given
    # the text up to the first blank line, where the header section has ended (RFC 5322
    # §2.1), and the body is added in one piece: the same message, fewer lines read.
    end = min((data.find(sep) for sep in ("\n\n", "\n\r\n") if sep in data), default=-1)
    if end == -1:
        return email.parser.Parser(policy=compat32).parsestr(data, headersonly=True)
    end = data.index("\n", end + 1) + 1  # after the blank line
    msg = email.parser.Parser(policy=compat32).parsestr(data[:end], headersonly=True)
    if msg.get_payload():  # a line that is no header ended the section before: read all
        return email.parser.Parser(policy=compat32).parsestr(data, headersonly=True)
    msg.set_payload(data[end:])
    return msg


def _mime_walk(msg: Message, depth: int = 0) -> Iterator[tuple[Message, str, bool]]:
    """Each part, depth first, as `Message.walk()` of a fully parsed message gives them,
    with its content type (found once: the header is parsed each time it is asked) and
    whether it is a container (multipart, or an attached message)."""
    ctype = msg.get_content_type()
    multipart = ctype.startswith("multipart/")
    # As the stdlib does, a message/* part holds a message (a forwarded report, a
    # feedback report's fields); a bounce's delivery-status never holds a report.
    attached = ctype.startswith("message/") and ctype != "message/delivery-status"
    if depth < _MAX_MIME_DEPTH and (multipart or attached):
        body = msg.get_payload()  # only a container's: an attachment's is large
        if isinstance(body, str):
            if multipart:
                boundary = msg.get_boundary()
                if boundary:
                    yield msg, ctype, True
                    for text in _split_multipart(body, boundary):
                        yield from _mime_walk(_parse_message(text), depth + 1)
                    return
            else:
                yield msg, ctype, True
                yield from _mime_walk(_parse_message(body), depth + 1)
                return
    yield msg, ctype, False


def _split_multipart(body: str, boundary: str) -> list[str]:
    """The body parts between boundary lines (RFC 2046 §5.1.1): a line "--boundary",
    "--boundary--" closing, either followed by nothing but spaces or tabs.  The line
    break before a boundary line belongs to it.  Without the closing line, the last
    part runs to the end (as the stdlib reads it)."""
    text = "\n" + body
    mark = "\n--" + boundary
    parts: list[str] = []
    start = -1  # where the current part begins; -1 in the preamble
    at = text.find(mark)
    while at != -1:
        after = at + len(mark)
        eol = text.find("\n", after)
        end = len(text) if eol == -1 else eol + 1
        rest = text[after:end].rstrip("\r\n")
        closing = rest.startswith("--")
        if not (rest[2:] if closing else rest).strip(" \t"):
            if start != -1:
                part = text[start:at]
                parts.append(part[:-1] if part.endswith("\r") else part)
            if closing:
                return parts
            start = end
        at = text.find(mark, after)
    if start != -1:
        parts.append(text[start:])
    return parts


# --- DMARC aggregate XML -----------------------------------------------------------------


def _text(el: Element | None, path: str) -> str:
    # Tags are local names (safexml strips namespaces), so ElementPath finds them.
    return (el.findtext(path) or "").strip() if el is not None else ""


def _xml_report(data: bytes, source: str, known: Known = NOTHING_KNOWN) -> Item:
    document = digest(data)
    if known:
        # The header alone (parsed as far as </report_metadata>) says whether the
        # store holds the report, and the digest that this is the document it was
        # stored from; anything odd there is left to the full parse.
        meta = parse_head(data, MAX_REPORT_BYTES, "report_metadata")
        if meta is not None:
            try:
                org, _, report_id = _report_key(meta)
            except _Bad:
                pass
            else:
                if known.get(("dmarc", org.lower(), report_id)) == document:
                    return Seen(source, "dmarc", org.lower(), report_id)
    try:
        root, ns = parse_xml(data, MAX_REPORT_BYTES)
    except XmlRefused as e:
        return Refused(source, str(e))
    if root.tag != "feedback":
        return Refused(source, f"XML whose root is <{root.tag}>, not a DMARC report's <feedback>")
    try:
        report = _aggregate(root, ns, source)
    except _Bad as e:
        return Refused(source, str(e))
    report.digest = document
    return report


def _int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _Bad(f"{what} is {text.strip()!r}, not a whole number") from None
    if value < 0:
        raise _Bad(f"{what} is {value}, below 0")
    return value


def _enum(text: str, allowed: frozenset[str], what: str, default: str = "") -> str:
    # Receivers write `Pass` and `PASS` too; the values themselves are fixed.
    value = text.strip().lower() or default
    if value not in allowed:
        raise _Bad(f"{what} is {text.strip()!r}, not one of {', '.join(sorted(allowed))}")
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
        raise _Bad(f"{what} is {text.strip()!r}, not an IP address")
    return ip


@lru_cache(maxsize=65536)
def _domain(text: str) -> str:
    return normalize(text.strip())


def _report_key(meta: Element) -> tuple[str, str, str]:
    """Organisation, reporting address and report id from <report_metadata>."""
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
    return org.strip(), mail, report_id


def _aggregate(root: Element, ns: str, source: str) -> AggregateReport:
    meta = root.find("report_metadata")
    if meta is None:
        raise _Bad("no <report_metadata>: not an aggregate report")
    org, mail, report_id = _report_key(meta)
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
        org=org,
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


# Stands in for a missing element, so a missing field reads as "" without a test.
_NONE = Element("none")


def _record(rec: Element, n: int) -> AggregateRow:
    try:
        return _record_fields(rec)
    except _Bad as e:
        # Numbered here, on error only: formatting it for every field costs time.
        raise _Bad(f"record {n}: {e}") from None


def _record_fields(rec: Element) -> AggregateRow:
    # The hot path of an ingest (one call per <record>): C lookups (find/findtext on
    # a plain tag name take the first such child) and set tests for the usual values.
    row = rec.find("row")
    if row is None:
        raise _Bad("no <row>")
    evaluated = row.find("policy_evaluated")
    if evaluated is None:
        evaluated = _NONE
    ident = rec.find("identifiers")
    if ident is None:
        ident = _NONE
    header_from = _domain(ident.findtext("header_from", ""))
    if not header_from:
        raise _Bad("no <identifiers><header_from>")
    dkim = []
    spf = []
    auth = rec.find("auth_results")
    for el in auth if auth is not None else ():
        d = _domain(el.findtext("domain", ""))
        if not d:
            continue
        tag = el.tag
        if tag == "dkim":
            result = el.findtext("result") or "none"
            if result not in DKIM_RESULTS:
                result = _enum(result, DKIM_RESULTS, "dkim result", "none")
            dkim.append(DkimAuth(d, el.findtext("selector", "").strip().lower(), result))
        elif tag == "spf":
            result = el.findtext("result") or "none"
            if result not in SPF_RESULTS:
                result = _enum(result, SPF_RESULTS, "spf result", "none")
            spf.append(SpfAuth(d, el.findtext("scope", "").strip().lower(), result))
    disposition = evaluated.findtext("disposition", "")
    if disposition not in DISPOSITIONS:
        disposition = _enum(disposition, DISPOSITIONS, "disposition")
    dmarc_dkim = evaluated.findtext("dkim") or "fail"
    if dmarc_dkim not in DMARC_RESULTS:
        dmarc_dkim = _enum(dmarc_dkim, DMARC_RESULTS, "dkim", "fail")
    dmarc_spf = evaluated.findtext("spf") or "fail"
    if dmarc_spf not in DMARC_RESULTS:
        dmarc_spf = _enum(dmarc_spf, DMARC_RESULTS, "spf", "fail")
    return AggregateRow(
        _ip(row.findtext("source_ip", ""), "source_ip"),
        _int(row.findtext("count", ""), "count"),
        disposition,
        dmarc_dkim,
        dmarc_spf,
        header_from,
        _domain(ident.findtext("envelope_from", "")),
        dkim,
        spf,
    )


# --- JSON: RFC 8460 and parsedmarc -------------------------------------------------------


def _json_reports(data: bytes, source: str, known: Known) -> Iterator[Item]:
    document = digest(data)
    for item in _json_doc(data, source, known, document):
        if isinstance(item, AggregateReport | TlsReport):
            item.digest = document
        yield item


def _json_doc(data: bytes, source: str, known: Known, document: str) -> Iterator[Item]:
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
                yield _json_one(item, f"{source}:{key}[{n}]", known, document)
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
            yield _json_one(item, f"{source}[{n}]", known, document)
        return
    yield _json_one(doc, source, known, document)


def _json_one(doc: Any, source: str, known: Known, document: str) -> Item:
    try:
        if not isinstance(doc, dict):
            raise _Bad(f"a JSON {type(doc).__name__} where a report object belongs")
        if "organization-name" in doc or "date-range" in doc:
            return _seen(doc, source, known, document, _RFC8460) or _tls(doc, source, _RFC8460)
        if "report_metadata" in doc:
            return _seen(doc, source, known, document) or _parsedmarc_aggregate(doc, source)
        if "organization_name" in doc and "policies" in doc:
            return _seen(doc, source, known, document, _PARSEDMARC_TLS) or _tls(
                doc, source, _PARSEDMARC_TLS
            )
        if doc.get("report_type") in ("aggregate", "smtp_tls") and "report" in doc:
            return _json_one(doc["report"], source, known, document)
        keys = ", ".join(sorted(map(str, doc))[:6])
        raise _Bad(f"JSON that is neither an SMTP TLS report nor parsedmarc output (keys: {keys})")
    except _Bad as e:
        return Refused(source, str(e))
    except (KeyError, TypeError, AttributeError) as e:
        return Refused(source, f"a report with a missing or mistyped field: {e}")


def _seen(
    doc: dict[str, Any],
    source: str,
    known: Known,
    document: str,
    tls: _TlsSpelling | None = None,
) -> Seen | None:
    """The report as `Seen` if the store holds it, stored from this very document;
    None (read it in full) otherwise."""
    if not known:
        return None
    try:
        if tls is None:
            meta = doc["report_metadata"]
            org, report_id = _parsedmarc_org(meta), _str(meta.get("report_id"), "report_id")
            kind = "dmarc"
        else:
            org, report_id = _str(_at(doc, tls.org), ""), _str(_at(doc, tls.report_id), "")
            kind = "tls"
    except (_Bad, KeyError, TypeError, AttributeError):
        return None
    key = (kind, org.lower(), report_id)
    return Seen(source, *key) if known.get(key) == document else None


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


@dataclass(frozen=True)
class _TlsSpelling:
    """Where one JSON spelling of an SMTP TLS report keeps each field (dotted paths):
    RFC 8460's own, or parsedmarc's (flatter, "_" for "-").  One reader serves both."""

    format: str
    org: str
    report_id: str
    begin: str
    end: str
    policy_type: str  # these within one item of "policies"
    policy_domain: str
    mx_hosts: str
    successes: str
    failures: str
    details: str
    sep: str  # the failure details' fields: RFC 8460's names with this for "-"


_RFC8460 = _TlsSpelling(
    "rfc8460",
    "organization-name",
    "report-id",
    "date-range.start-datetime",
    "date-range.end-datetime",
    "policy.policy-type",
    "policy.policy-domain",
    "policy.mx-host",
    "summary.total-successful-session-count",
    "summary.total-failure-session-count",
    "failure-details",
    "-",
)
_PARSEDMARC_TLS = _TlsSpelling(
    "parsedmarc",
    "organization_name",
    "report_id",
    "begin_date",
    "end_date",
    "policy_type",
    "policy_domain",
    "mx_host_patterns",
    "successful_session_count",
    "failed_session_count",
    "failure_details",
    "_",
)


def _at(doc: dict[str, Any], path: str, where: str = "") -> Any:
    """The value at a dotted path; an object missing on the way is refused by name."""
    *parents, last = path.split(".")
    for n, key in enumerate(parents):
        doc = doc.get(key)
        if not isinstance(doc, dict):
            raise _Bad(f"no {where}{'.'.join(parents[: n + 1])} object")
    return doc.get(last)


def _tls(doc: dict[str, Any], source: str, spelling: _TlsSpelling) -> TlsReport:
    sp = spelling
    begin = _time(_at(doc, sp.begin), sp.begin)  # first: a missing date range says so
    policies_in = doc.get("policies")
    if not isinstance(policies_in, list) or not policies_in:
        raise _Bad("no policies list")
    policies = []
    for n, item in enumerate(policies_in, 1):
        where = f"policies[{n}]"
        if not isinstance(item, dict):
            raise _Bad(f"{where}: not an object")
        policies.append(
            TlsPolicy(
                _str(_at(item, sp.policy_type, where + "."), f"{where}.{sp.policy_type}").lower(),
                _domain(
                    _str(_at(item, sp.policy_domain, where + "."), f"{where}.{sp.policy_domain}")
                ),
                _mx_list(_at(item, sp.mx_hosts, where + ".")),
                _count(_at(item, sp.successes, where + "."), f"{where}.{sp.successes}"),
                _count(_at(item, sp.failures, where + "."), f"{where}.{sp.failures}"),
                _tls_failures(item.get(sp.details), f"{where}.{sp.details}", sp.sep),
            )
        )
    return TlsReport(
        org=_str(_at(doc, sp.org), sp.org),
        report_id=_str(_at(doc, sp.report_id), sp.report_id),
        begin=begin,
        end=_time(_at(doc, sp.end), sp.end),
        policies=policies,
        format=sp.format,
        source=source,
    )


def _tls_failures(items: Any, where: str, sep: str) -> list[TlsFailure]:
    def key(name: str) -> str:
        return name.replace("-", sep)

    if items is not None and not isinstance(items, list):
        raise _Bad(f"{where}: not a list")
    details = []
    for m, fd in enumerate(items or [], 1):
        w = f"{where}[{m}]"
        if not isinstance(fd, dict):
            raise _Bad(f"{w}: not an object")
        details.append(
            TlsFailure(
                _str(fd.get(key("result-type")), f"{w}.{key('result-type')}").lower(),
                _count(fd.get(key("failed-session-count")), f"{w}.{key('failed-session-count')}"),
                _domain(_str(fd.get(key("receiving-mx-hostname")), "mx", required=False)),
                _str(fd.get(key("failure-reason-code")), "reason", required=False)[:200],
            )
        )
    return details


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
                dkim=_auths(auth, "dkim", "selector", DKIM_RESULTS, DkimAuth, where),
                spf=_auths(auth, "spf", "scope", SPF_RESULTS, SpfAuth, where),
                reverse_dns=_domain(str(src.get("reverse_dns") or "")),
            )
        )
    return AggregateReport(
        org=_parsedmarc_org(meta),
        report_id=_str(meta.get("report_id"), "report_metadata.report_id"),
        begin=_time(meta.get("begin_date"), "report_metadata.begin_date"),
        end=_time(meta.get("end_date"), "report_metadata.end_date"),
        domain=domain,
        rows=rows,
        format="parsedmarc",
        email=str(meta.get("org_email") or ""),
        policy={str(k): str(v) for k, v in published.items() if v is not None},
        source=source,
    )


def _auths(
    auth: dict[str, Any], kind: str, second: str, allowed: frozenset[str], cls: Any, where: str
) -> list[Any]:
    """parsedmarc's auth_results of one kind, as DkimAuth (d=, selector) or SpfAuth
    (domain, scope)."""
    return [
        cls(
            _domain(str(a.get("domain") or "")),
            str(a.get(second) or "").lower(),
            _enum(str(a.get("result") or "none"), allowed, f"{where}.{kind}"),
        )
        for a in auth.get(kind) or []
        if a.get("domain")
    ]


def _parsedmarc_org(meta: dict[str, Any]) -> str:
    email_addr = str(meta.get("org_email") or "")
    org = str(meta.get("org_name") or "").strip() or email_addr.rpartition("@")[2]
    if not org:
        raise _Bad("report_metadata has no org_name and no org_email")
    return org


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

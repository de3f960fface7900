"""DMARC (RFC 9989): recognise, parse and check any DMARC record text
(§4.7, §4.8), and build the `_dmarc` value from the policy settings.

Parsing checks hand-written records, every record we emit, and the
conformance vectors.  The verdict is the publisher's: a record whose author
meant something receivers will discard (an invalid `p=`, a typo in `adkim=`)
is an error here, even where §4.8 has receivers fall back to a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from ..dmarc.uri import ReportUri, ReportUriError, parse_report_uri
from ..findings import Severity
from ..policy.dmarc import Alignment, DmarcPolicySettings

# RFC 9990: what a report destination publishes to accept another domain's reports.
AUTHORIZATION_VALUE = "v=DMARC1"
# dmarc-version = "v" dmarc-eq %s"DMARC1": the tag name is a case-insensitive
# ABNF literal, the value is case-sensitive (RFC 9989 §4.8), so a hand-written
# `V=DMARC1; p=reject` is a DMARC record receivers read.
VERSION = re.compile(r"[vV][ \t]*=[ \t]*DMARC1(?=[ \t]*;|[ \t]*\Z)")


def owns(text: str) -> bool:
    """True for a DMARC record (policy or report authorization)."""
    return VERSION.match(text) is not None


def dmarc_value(settings: DmarcPolicySettings) -> str:
    """The record, tags in publishing order: v first (required), p second (RFC 7489
    receivers require it there), defaults left out so the record stays short
    and later default changes are inherited."""
    tags = [("v", "DMARC1"), ("p", settings.p.value)]
    if settings.subdomain_policy is not None and settings.subdomain_policy != settings.p:
        tags.append(("sp", settings.subdomain_policy.value))
    if settings.nonexistent_policy is not None and settings.nonexistent_policy != settings.sp:
        tags.append(("np", settings.nonexistent_policy.value))
    if settings.public_suffix_domain is not None:
        tags.append(("psd", "y" if settings.public_suffix_domain else "n"))
    if settings.testing:
        tags.append(("t", "y"))
    if settings.dkim_alignment is Alignment.strict:
        tags.append(("adkim", "s"))
    if settings.spf_alignment is Alignment.strict:
        tags.append(("aspf", "s"))
    if settings.rua:
        tags.append(("rua", ",".join(settings.rua)))
    if settings.ruf:
        tags.append(("ruf", ",".join(settings.ruf)))
        if settings.fo and settings.fo != "0":
            tags.append(("fo", settings.fo))
    legacy = settings.legacy
    if legacy is not None:
        if legacy.pct is not None:
            tags.append(("pct", str(legacy.pct)))
        if legacy.rf is not None:
            tags.append(("rf", ",".join(legacy.rf)))
        if legacy.ri is not None:
            tags.append(("ri", str(legacy.ri)))
    return "; ".join(f"{k}={v}" for k, v in tags)


def parked_value(rua: list[str]) -> str:
    """A parked domain's record: np= (RFC 9989) covers names that do not exist;
    receivers that predate it ignore the unknown tag (RFC 7489 §6.3)."""
    return "v=DMARC1; p=reject; sp=reject; np=reject" + (f"; rua={','.join(rua)}" if rua else "")


RFC = "RFC 9989"

_SEP = re.compile(r"[ \t]*;[ \t]*")
# dmarc-tag = 1*ALPHA dmarc-eq tag-value (any printing characters but ';')
_TAG = re.compile(r"^([A-Za-z]+)[ \t]*=[ \t]*([^;]*?)[ \t]*$")

DISPOSITIONS = ("none", "quarantine", "reject")
KNOWN_TAGS = ("v", "p", "sp", "np", "psd", "t", "adkim", "aspf", "rua", "ruf", "fo")
REMOVED_TAGS = ("pct", "rf", "ri")  # RFC 9989 App. C.5.2


# A NamedTuple, not a frozen dataclass: every `validate` defines it, and a dataclass
# costs four times as much to define (it compiles its methods from source).
class Problem(NamedTuple):
    severity: Severity
    code: str  # "syntax" (the record is not DMARC), "value" (a tag's value), or a warning id
    message: str
    rfc: str | None = None


@dataclass
class ParsedDmarc:
    """Tags as written (names lower case; values as written, stripped), and problems."""

    text: str
    tags: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    @property
    def valid(self) -> bool:
        return not self.errors

    def _add(self, severity: Severity, code: str, message: str, rfc: str | None = None) -> None:
        self.problems.append(Problem(severity, code, message, rfc))


def _split_uris(value: str) -> list[str]:
    return [p.strip() for p in value.split(",")] if value.strip() else []


def valid_uris(value: str) -> list[ReportUri]:
    """The URIs of a rua=/ruf= value that parse (receivers skip the others)."""
    out = []
    for part in _split_uris(value):
        try:
            out.append(parse_report_uri(part))
        except ReportUriError:
            pass
    return out


def parse_dmarc(text: str, *, policy_record: bool = True) -> ParsedDmarc:
    """Parse one TXT value.  `policy_record=False` checks a report
    authorization record (`v=DMARC1` alone is complete there, RFC 9990)."""
    out = ParsedDmarc(text)
    if not owns(text):
        if text.strip() != text and owns(text.strip()):
            why = "it starts with white space"
        elif text.lower().startswith("v=spf1"):
            why = "it is an SPF record"
        elif re.match(r"^[vV][ \t]*=[ \t]*DMARC1", text):
            why = "v=DMARC1 must be followed by ';' before the next tag"
        else:
            why = "it does not start with v=DMARC1 (exactly, in upper case)"
        out._add(Severity.ERROR, "syntax", f"not a DMARC record: {why}", f"{RFC} §4.8")
        return out
    parts = _SEP.split(text)
    seen: dict[str, str] = {}
    for i, part in enumerate(parts):
        if i == len(parts) - 1 and part.strip() == "":
            break  # a trailing separator is allowed: [dmarc-sep]
        m = _TAG.match(part)
        if not m:
            out._add(
                Severity.ERROR,
                "syntax",
                f"{part!r} is not a tag: write name=value, tags separated by ';'",
                f"{RFC} §4.8",
            )
            continue
        name, value = m.group(1).lower(), m.group(2)
        if name in seen:
            # The ABNF allows it, but which value applies is undefined; checkdmarc and
            # the tag-list rule DMARC's syntax derives from (RFC 6376 §3.2) reject it.
            out._add(Severity.ERROR, "syntax", f"tag {name}= appears twice", "RFC 6376 §3.2")
            continue
        seen[name] = value
    out.tags = seen
    if out.errors:
        return out
    _check_values(out, policy_record)
    return out


def _check_values(out: ParsedDmarc, policy_record: bool) -> None:
    tags = out.tags
    for name, value in tags.items():
        low = value.lower()
        if name in ("p", "sp", "np") and low not in DISPOSITIONS:
            out._add(
                Severity.ERROR,
                "value",
                f"{name}={value!r} is not a policy: use none, quarantine or reject",
                f"{RFC} §4.7",
            )
        elif name in ("adkim", "aspf") and low not in ("r", "s"):
            out._add(
                Severity.ERROR,
                "value",
                f"{name}={value!r} is not an alignment mode: use r (relaxed) or s (strict); "
                "receivers would use r",
                f"{RFC} §4.7",
            )
        elif name == "psd" and low not in ("y", "n", "u"):
            out._add(Severity.ERROR, "value", f"psd={value!r}: use y, n or u", f"{RFC} §4.7")
        elif name == "t" and low not in ("y", "n"):
            out._add(Severity.ERROR, "value", f"t={value!r}: use y or n", f"{RFC} §4.7")
        elif name == "fo":
            _check_fo(out, value)
        elif name in ("rua", "ruf"):
            _check_uris(out, name, value)
        elif name in REMOVED_TAGS:
            out._add(
                Severity.WARNING,
                "removed-tag",
                f"{name}= was removed by RFC 9989; receivers following it ignore the tag",
                f"{RFC} App. C.5.2",
            )
        elif name not in KNOWN_TAGS:
            out._add(
                Severity.WARNING,
                "unknown-tag",
                f"unknown tag {name}= is ignored by receivers",
                f"{RFC} §4.7",
            )
    if not policy_record:
        return
    if "p" not in tags:
        # §4.10.1: a record without a valid p= counts as p=none only when it has a
        # valid rua=; otherwise DMARC is not applied at all.
        has_rua = bool(valid_uris(tags.get("rua", "")))
        if has_rua:
            out._add(
                Severity.WARNING,
                "p-missing",
                "no p= tag: RFC 9989 reads this as p=none; RFC 7489 receivers reject the record",
                f"{RFC} §4.7",
            )
        else:
            out._add(
                Severity.ERROR,
                "syntax",
                "no p= tag and no valid rua=: receivers do not apply DMARC",
                f"{RFC} §4.10.1",
            )
    elif list(tags)[1] != "p":
        out._add(
            Severity.WARNING,
            "p-not-second",
            "p= does not follow v=: RFC 9989 allows any order, RFC 7489 receivers do not",
            "RFC 7489 §6.3",
        )


def _check_fo(out: ParsedDmarc, value: str) -> None:
    options = [o.strip().lower() for o in value.split(":")]
    bad = [o for o in options if o not in ("0", "1", "d", "s")]
    if bad:
        out._add(
            Severity.ERROR,
            "value",
            f"fo={value!r}: {bad[0]!r} is not a failure option (0, 1, d or s, joined by ':')",
            f"{RFC} §4.7",
        )
    elif "0" in options and "1" in options:
        out._add(
            Severity.WARNING,
            "fo-redundant",
            "fo=0 and fo=1 together: 1 (any failure) already covers 0 (all failed)",
            f"{RFC} §4.7",
        )
    elif len(set(options)) != len(options):
        out._add(Severity.WARNING, "fo-redundant", f"fo={value!r} repeats an option")


def _check_uris(out: ParsedDmarc, name: str, value: str) -> None:
    parts = _split_uris(value)
    if not parts:
        out._add(Severity.ERROR, "value", f"{name}= is empty", f"{RFC} §4.7")
        return
    for part in parts:
        try:
            uri = parse_report_uri(part)
        except ReportUriError as e:
            out._add(Severity.ERROR, "value", f"{name}=: {e}", f"{RFC} §4.7")
            continue
        if uri.size is not None:
            out._add(
                Severity.WARNING,
                "size-obsolete",
                f"{name}=: the size limit !{uri.size} on {uri.address} is obsolete syntax "
                "that reporters ignore",
                f"{RFC} §4.8",
            )

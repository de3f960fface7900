"""DMARC report URIs (rua=, ruf=): RFC 9989 §4.7/§4.8, RFC 3986, RFC 6068.

Apart from the record parser, because the policy models check the URIs a
policy names, and the record parser depends on the policy models."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote

from ..names import InvalidName, check_name

_SIZE = re.compile(r"!([0-9]+)([kmgt]?)$", re.IGNORECASE)
# RFC 3986 §3.1 scheme, and a deliberately plain addr-spec for mailto: (RFC 6068).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.+)$")
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+\Z")


class ReportUriError(ValueError):
    """A rua/ruf URI we cannot accept; the text says why and how to write it."""


# A NamedTuple, not a frozen dataclass: every `validate` defines it, and a dataclass
# costs four times as much to define (it compiles its methods from source).
class ReportUri(NamedTuple):
    """One rua/ruf destination: `mailto:dmarc@reports.example.net`."""

    text: str
    scheme: str
    address: str
    host: str | None  # the mail domain for mailto:, else None
    size: str | None = None  # the obsolete `!size` suffix, if any (RFC 9989 §4.8)


def parse_report_uri(uri: str) -> ReportUri:
    """Check one report URI (RFC 9989 §4.7, §4.8; RFC 3986; RFC 6068 for mailto)."""
    bad = next((c for c in uri if c < " " or c == "\x7f"), None)
    if bad is not None:
        raise ReportUriError(f"{uri!r} contains a control character ({bad!r})")
    text = uri.strip(" ")
    size_match = _SIZE.search(text)
    size = None
    if size_match:
        size = size_match.group(0)[1:]
        text = text[: size_match.start()]
    if any(c in text for c in ",!;") or any(c.isspace() for c in text) or not text.isascii():
        raise ReportUriError(
            f"{uri!r}: commas, '!', ';', spaces and non-ASCII characters must be "
            "percent-encoded inside a report URI (RFC 9989 §4.8)"
        )
    m = _SCHEME.match(text)
    if not m:
        raise ReportUriError(
            f"{uri!r} is not a report URI: it needs a scheme, e.g. "
            "mailto:reports@example.com (RFC 9989 §4.7)"
        )
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme != "mailto":
        raise ReportUriError(
            f"{uri!r}: receivers are only required to support mailto: report URIs "
            "(RFC 9989 §4.7); write mailto:dmarc@example.com"
        )
    address = unquote(rest.split("?", 1)[0])
    local, at, host = address.rpartition("@")
    if not at or not local or not _LOCAL.match(local):
        raise ReportUriError(
            f"{uri!r} is not a mail address URI: write mailto:local-part@domain (RFC 6068)"
        )
    try:
        host = check_name(host, "the report address's domain")
    except InvalidName as e:
        raise ReportUriError(f"{uri!r}: {e}") from None
    return ReportUri(uri, scheme, address, host, size)

"""Desired records (what the compile step wants published, free of octoDNS
types) and the octoDNS TXT escaping."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..findings import Location
from ..names import relative_to


@dataclass(frozen=True)
class DesiredRecord:
    """One record the policy wants.

    `name` is the absolute name, lower case, no trailing dot.  TXT values are
    plain text (not octoDNS-escaped); CNAME and MX targets end in a dot.
    `kind` says which TXT values at the name this record owns (see
    records.txt_kind_matches); `owner` says who asked for it ("spf", "dmarc",
    "sender relay", ...), which the plan and error messages show.
    """

    name: str
    type: str
    ttl: int
    values: tuple[str, ...]
    owner: str
    kind: str | None = None
    location: Location | None = None
    takeover: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)

    def relative_name(self, zone: str) -> str:
        return relative_to(self.name, zone) or ""


def escape_txt(value: str) -> str:
    """Text -> octoDNS TXT value: `;` must be escaped as `\\;` (octoDNS's rule)."""
    return value.replace("\\", "\\\\").replace(";", "\\;")


_ESCAPE = re.compile(r"\\(\d{3}|.)", re.DOTALL)


def unescape_txt(value: str) -> str:
    """octoDNS TXT value -> text: `\\;` and the RFC 1035 §5.1 forms `\\X` and
    `\\DDD` (a decimal octet), so `v=DMARC1\\059 p=reject` reads as what
    receivers see."""

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        return chr(int(code)) if code.isdigit() and int(code) < 256 else code

    return _ESCAPE.sub(one, value)

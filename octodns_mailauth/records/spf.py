"""SPF (RFC 7208): which TXT values are SPF records, and the record text.
Parsing and lookup accounting: spf/parser.py, spf/lookups.py."""

from __future__ import annotations

import re
from collections.abc import Iterable

VERSION = "v=spf1"
# §4.5: exactly `v=spf1` then a space or the end; ABNF literals are
# case-insensitive (§4.6.1, §12), so `V=SPF1` counts.
_VERSION = re.compile(r"v=spf1(?: |\Z)", re.IGNORECASE)


def owns(text: str) -> bool:
    """True for text that starts an SPF record."""
    return _VERSION.match(text) is not None


def build(terms: Iterable[str]) -> str:
    """`v=spf1` followed by the terms, one space apart (§4.6.1)."""
    return " ".join([VERSION, *terms])

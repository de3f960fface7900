"""SPF (RFC 7208): recursive DNS lookup accounting here; the record grammar
in records/spf.py."""

from __future__ import annotations

from ..records.spf import (
    Mechanism,
    Modifier,
    SpfRecord,
    SpfSyntaxError,
    Term,
    check_domain_spec,
    check_explanation,
    has_macro,
    parse,
    select_records,
)
from .lookups import MAX_DNS_LOOKUPS, MAX_VOID_LOOKUPS, LookupTree, analyze, analyze_many

__all__ = [
    "MAX_DNS_LOOKUPS",
    "MAX_VOID_LOOKUPS",
    "LookupTree",
    "analyze",
    "analyze_many",
    "Mechanism",
    "Modifier",
    "SpfRecord",
    "SpfSyntaxError",
    "Term",
    "check_domain_spec",
    "check_explanation",
    "has_macro",
    "parse",
    "select_records",
]

"""SPF (RFC 7208): record grammar and recursive DNS lookup accounting."""

from __future__ import annotations

from .lookups import MAX_DNS_LOOKUPS, MAX_VOID_LOOKUPS, LookupTree, analyze, analyze_many
from .parser import (
    Mechanism,
    Modifier,
    SpfRecord,
    SpfSyntaxError,
    Term,
    check_domain_spec,
    check_explanation,
    has_macro,
    is_spf,
    parse,
    select_records,
)

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
    "is_spf",
    "parse",
    "select_records",
]

"""Render an SPF record from terms."""

from __future__ import annotations

from ..context import SpfTerm
from ..policy.spf import SpfAll
from ..records import spf

QUALIFIER = {SpfAll.fail: "-", SpfAll.softfail: "~", SpfAll.neutral: "?"}


def order_terms(terms: list[SpfTerm]) -> list[SpfTerm]:
    """ip4/ip6 first: a receiver stops at the first match, and address terms
    cost no DNS lookup, so our own servers are judged without any."""
    rank = {"ip4": 0, "ip6": 1, "a": 2, "mx": 3, "include": 4}
    return sorted(terms, key=lambda t: rank.get(t.mechanism, 5))


def spf_value(terms: list[SpfTerm], all_qualifier: SpfAll) -> str:
    return spf.build([*(t.text for t in terms), f"{QUALIFIER[all_qualifier]}all"])

"""Build the SPF record a policy asks for (first cut: ip4, ip6, a, mx, include, all)."""

from __future__ import annotations

from dataclasses import dataclass

from ..policy.models import SpfAll

QUALIFIER = {SpfAll.fail: "-", SpfAll.softfail: "~", SpfAll.neutral: "?"}
# Terms that cost a DNS lookup (RFC 7208 §4.6.4).
LOOKUP_MECHANISMS = ("include", "a", "mx", "ptr", "exists")


@dataclass(frozen=True)
class SpfTerm:
    text: str  # e.g. "include:_spf.google.com"
    sender: str  # which sender asked for it

    @property
    def mechanism(self) -> str:
        return self.text.split(":", 1)[0].split("/", 1)[0].lstrip("+-~?")

    @property
    def costs_lookup(self) -> bool:
        return self.mechanism in LOOKUP_MECHANISMS


def order_terms(terms: list[SpfTerm]) -> list[SpfTerm]:
    """ip4/ip6 first: a receiver stops at the first match, and address terms
    cost no DNS lookup, so our own servers are judged without any."""
    rank = {"ip4": 0, "ip6": 1, "a": 2, "mx": 3, "include": 4}
    return sorted(terms, key=lambda t: rank.get(t.mechanism, 5))


def spf_value(terms: list[SpfTerm], all_qualifier: SpfAll) -> str:
    parts = ["v=spf1", *(t.text for t in terms), f"{QUALIFIER[all_qualifier]}all"]
    return " ".join(parts)

"""Record size: RFC 7208 §3.4 asks that the DNS name plus the text of every TXT
record at that name stay under 450 octets, so the answer fits a 512-octet UDP
reply.  When ours would not, its terms are spread over a chain of include
records under the name (`_spf1.<name>`, `_spf2.<name>`, ...), each costing one
more DNS lookup.  (Strings over 255 octets are split into several
character-strings by the octoDNS providers; tests/test_spf_size.py checks that
on the wire.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..records.spf import build

SIZE_GUIDELINE = 450  # RFC 7208 §3.4
SEC_SIZE = "RFC 7208 §3.4"


def answer_size(name: str, values: list[str]) -> int:
    """The §3.4 measure: the name's length plus all TXT text at it."""
    return len(name.encode()) + sum(len(v.encode()) for v in values)


def chain_name(name: str, n: int) -> str:
    return f"_spf{n}.{name}"


# `a`, `mx`, `ptr` without a domain mean "the domain being checked", which inside
# an included record is the included name (RFC 7208 §5.2: check_host() runs with
# the include's target), not ours.
_BARE = re.compile(r"^([+\-~?]?)(a|mx|ptr)((?:/[0-9/]*)?)$", re.IGNORECASE)


def anchored(term: str, name: str) -> str:
    """`term` as it must read in a chained record under `name`: a bare a/mx/ptr
    names `name` explicitly, so it still checks our name and not `_spfN.<name>`."""
    match = _BARE.match(term)
    if match is None:
        return term
    qualifier, mech, cidr = match.groups()
    return f"{qualifier}{mech}:{name}{cidr}"


@dataclass(frozen=True)
class Split:
    """The records a too-long SPF record becomes: (name, value) in chain order."""

    records: list[tuple[str, str]]

    @property
    def extra_lookups(self) -> int:
        return len(self.records) - 1


def split_record(name: str, terms: list[str], closing: str, others_size: int = 0) -> Split:
    """Fit `v=spf1 <terms> <closing>` at `name` within the guideline, chaining
    includes when needed.  `others_size` is the text of other TXT values at the
    name (site verification tokens...), which count towards its budget.

    Chained records carry only their terms and the include of the next one:
    an included record that matches nothing returns neutral, which the
    including record treats as no match (RFC 7208 §5.2), so no `all` is needed
    and the top record's `closing` decides for everyone else.
    """
    records: list[tuple[str, str]] = []
    remaining = list(terms)
    n = 0
    while True:
        if n == 1:  # from here on, terms live in chained records
            remaining = [anchored(t, name) for t in remaining]
        here = name if n == 0 else chain_name(name, n)
        budget = SIZE_GUIDELINE - len(here.encode()) - (others_size if n == 0 else 0)
        tail = [closing] if n == 0 else []
        full = build([*remaining, *tail])
        if len(full.encode()) <= budget or not remaining:
            records.append((here, full))
            return Split(records)
        link = f"include:{chain_name(name, n + 1)}"
        taken: list[str] = []
        for term in remaining:
            trial = build([*taken, term, link, *tail])
            if len(trial.encode()) > budget:
                break
            taken.append(term)
        if not taken:  # one term alone is too long: give up splitting, keep it as is
            records.append((here, full))
            return Split(records)
        records.append((here, build([*taken, link, *tail])))
        remaining = remaining[len(taken) :]
        n += 1

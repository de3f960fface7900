"""The SPF step: the senders' terms -> the SPF record(s) at the policy domain."""

from __future__ import annotations

from ..context import CompileContext, SpfTerm
from ..findings import Severity
from ..records import DesiredRecord
from .build import order_terms, spf_value

MAX_LOOKUPS = 10  # RFC 7208 §4.6.4


def spf_step(ctx: CompileContext) -> None:
    policy = ctx.lp.policy
    unique: list[SpfTerm] = []
    seen: dict[str, SpfTerm] = {}
    for term in ctx.spf_terms:
        first = seen.get(term.text)
        if first is not None:
            ctx.find(
                Severity.WARNING,
                f"SPF term {term.text} is asked for by both {first.sender!r} and "
                f"{term.sender!r}; it is published once",
                ctx.location("senders"),
                code="spf-duplicate-term",
            )
            continue
        seen[term.text] = term
        unique.append(term)
    ordered = order_terms(unique)
    lookups = [t for t in ordered if t.costs_lookup]
    if len(lookups) > MAX_LOOKUPS:
        per_sender: dict[str, int] = {}
        for t in lookups:
            per_sender[t.sender] = per_sender.get(t.sender, 0) + 1
        detail = ", ".join(f"{s}: {n}" for s, n in per_sender.items())
        ctx.find(
            Severity.ERROR,
            f"the SPF record needs {len(lookups)} DNS lookups at the top level alone; "
            f"receivers give up after {MAX_LOOKUPS} ({detail})",
            ctx.location("senders"),
            "drop senders you no longer use, or list their addresses with ip4/ip6",
            rfc="RFC 7208 §4.6.4",
            code="spf-too-many-lookups",
        )
    where = ctx.location("spf") if ctx.has_key("spf") else ctx.location("senders")
    ctx.add(
        DesiredRecord(
            ctx.domain,
            "TXT",
            ctx.ttl,
            (spf_value(ordered, policy.spf.all),),
            "spf",
            "spf",
            where,
            takeover=policy.spf.takeover,
        )
    )

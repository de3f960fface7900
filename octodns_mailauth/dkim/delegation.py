"""Delegated DKIM: selectors we publish as a CNAME to a key the vendor holds
(Microsoft 365, SendGrid, Amazon SES, Mailchimp...).

The CNAME alone proves nothing: until the vendor publishes the key at the
target (and turns signing on), verifiers find no key and the mail is not
signed as our domain (RFC 6376 §6.1.2: the key is fetched at
`<selector>._domainkey.<d>`, and the CNAME leads there).  So each target is
resolved, through the lock file offline (`lock refresh` stores the key record
it reaches) or live DNS in `check`, and only a target that answers with a
usable key record counts as verified.
"""

from __future__ import annotations

from ..context import CompileContext, SenderFacts
from ..dns.lockfile import NO_LOCK, REFRESH_COMMAND
from ..dns.resolver import DnsError, Resolver
from ..findings import Severity
from ..outcome import DelegatedTarget, TargetStatus
from ..records.dkim import parse_key_record
from ..spf.step import ZoneLayer
from .keys import DkimKeyError, check_published_key

SEC_KEY = "RFC 6376 §6.1.2"


def check_target(
    resolver: Resolver | None, target: str, vendor: str
) -> tuple[TargetStatus, str, str | None]:
    """What `target` answers: the key a verifier would reach through the CNAME, and a
    warning when `vendor`'s key there is short (RFC 8301 §3.2)."""
    if resolver is None:
        return TargetStatus.UNKNOWN, "no lock file", None
    try:
        answers = resolver.query(target, "TXT")
    except DnsError as err:
        if err.kind == "nxdomain":
            return TargetStatus.NO_KEY, "NXDOMAIN", None
        if err.kind == "missing":
            return TargetStatus.UNKNOWN, f"no answer in {resolver.source}", None
        return TargetStatus.UNKNOWN, f"DNS {err.kind}", None
    if not answers:
        return TargetStatus.NO_KEY, "no TXT record", None
    problems: list[str] = []
    for text in answers:
        try:
            record = parse_key_record(text)
        except DkimKeyError as err:
            problems.append(str(err))
            continue
        if record.public_key is None:
            problems.append("the key is revoked (p= empty)")
            continue
        weak = check_published_key(record.public_key, vendor=vendor)
        return TargetStatus.VERIFIED, f"{record.algorithm} key", weak
    return TargetStatus.NO_KEY, "no usable DKIM key record: " + "; ".join(problems), None


def verify_targets(
    senders: list[SenderFacts], resolver: Resolver | None, zone: ZoneLayer | None = None
) -> list[DelegatedTarget]:
    """Each delegated target resolved: by `zone` when it is under the zone's domain
    (our zone answers it, never the lock: that holds third-party names only), else
    by `resolver`."""
    return [
        DelegatedTarget(facts.name, name, target, *check_target(by, target, vendor))
        for facts in senders
        for vendor in [facts.provider.name if facts.provider else "the vendor"]
        for name, target in facts.delegated
        for by in [zone if zone is not None and zone.own(target) else resolver]
    ]


def delegation_step(ctx: CompileContext) -> None:
    """Resolve every delegated selector's target; a domain whose delegated keys
    are none verified is `unverified_dkim` for alignment (dmarc/alignment.py)."""
    if ctx.result.details.parked:
        return
    domain = ctx.domain
    zone = ZoneLayer(ctx, None)
    targets = verify_targets(ctx.result.senders, ctx.resolver, zone)
    for facts in ctx.result.senders:
        mine = [t for t in targets if t.sender == facts.name]
        if not mine:
            continue
        where = facts.location or ctx.location("senders", facts.index)
        label = facts.label
        d = facts.delegated_d or domain
        own_keys = bool(ctx.lp.policy.senders[facts.index].dkim) and d == domain
        if not own_keys and not any(t.verified for t in mine):
            facts.unverified_dkim.add(d)
        for t in mine:
            if t.status is TargetStatus.NO_KEY:
                ctx.find(
                    Severity.WARNING,
                    f"{label}: {t.name} points at {t.target}, which has no DKIM key "
                    f"({t.detail}): verifiers find no key there, so this selector signs "
                    "nothing that passes",
                    where,
                    "turn DKIM signing on for the domain in the vendor's console, or copy the "
                    "CNAME target again from there; then refresh the lock "
                    f"(`{REFRESH_COMMAND}`)",
                    rfc=SEC_KEY,
                    code="dkim-target-no-key",
                )
            elif t.weak:
                ctx.find(
                    Severity.WARNING,
                    f"{label}: the DKIM key at {t.target} (for {t.name}) is weak: {t.weak}",
                    where,
                    "rotate the DKIM key in the vendor's console choosing 2048 bits (or ask "
                    f"the vendor for a 2048-bit key); then refresh the lock (`{REFRESH_COMMAND}`)",
                    rfc="RFC 8301 §3.2",
                    code="dkim-key-weak",
                )
            elif t.status is TargetStatus.UNKNOWN:
                # A target under the domain is answered by its zone, never the lock.
                own = zone.own(t.target)
                ctx.find(
                    Severity.WARNING,
                    f"{label}: the DKIM key at {t.target} (for {t.name}) is unverified: "
                    f"{t.detail}",
                    where,
                    f"{t.target} is in this domain's zone, which the lock does not hold: publish "
                    "the vendor's key record there, or check with `octodns-validate` (processor "
                    "setting `config_file`), which sees the zone's records"
                    if own
                    else f"run `{REFRESH_COMMAND}` to resolve and record it",
                    rfc=SEC_KEY,
                    code="dkim-target-unverified",
                    cause=NO_LOCK if ctx.resolver is None and not own else None,
                )

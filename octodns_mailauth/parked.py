"""Parked domains and null MX.

`parked: true` says the domain sends and receives no mail; it becomes the
records of the M3AAWG "Protecting Parked Domains" BCP: `v=spf1 -all`, DMARC
`p=reject; sp=reject; np=reject`, null MX (RFC 7505), and the wildcard DKIM
record `*._domainkey` (revoked key) where the zone has nothing of its own there.
`null_mx: true` alone is for domains that send but never receive.

One deviation from the BCP, on purpose: no wildcard `*.<domain> TXT "v=spf1
-all"`.  A wildcard answers every TXT query for a name that does not exist,
including `_mta-sts`, `_smtp._tls`, `<selector>._bimi` and `_dmarc.<sub>`, so
verifiers find an SPF record where they look for those and report errors
(checkdmarc does); RFC 7208 §3.5 discourages wildcard SPF for such reasons.
Instead `v=spf1 -all` is published at every host name the zone has (A, AAAA or
MX), and DMARC `sp=reject` / `np=reject` (RFC 9989) covers the other
subdomains, existing or not, for every receiver that applies DMARC.
"""

from __future__ import annotations

from .context import CompileContext
from .findings import Severity
from .policy.dmarc import DmarcPolicy
from .records import dkim, mx, spf, txt_kind_matches
from .records.base import DesiredRecord
from .records.dmarc import parked_value

PARKED_SPF = spf.build(["-all"])
OWNER = "parked"


def parked_step(ctx: CompileContext) -> None:
    """Runs first.  For a parked domain it publishes every record itself and
    marks `details.parked`, so the SPF and DMARC steps know to stand aside."""
    policy = ctx.lp.policy
    if policy.parked:
        ctx.result.details.parked = True
        _parked(ctx)
    elif policy.null_mx:
        _null_mx(ctx, "null_mx", "null-mx")
        _check_mx_senders(ctx)


def _parked(ctx: CompileContext) -> None:
    policy = ctx.lp.policy
    where = ctx.location("parked")
    if policy.senders:
        names = ", ".join(repr(s.name) for s in policy.senders)
        ctx.find(
            Severity.ERROR,
            f"{ctx.domain} is parked (it sends no mail) but declares senders: {names}",
            ctx.location("senders"),
            "remove the senders, or remove parked: true (use null_mx: true for a domain "
            "that sends but never receives)",
            code="parked-has-senders",
        )
    rua: list[str] = []
    takeover_dmarc = False
    if policy.dmarc is not None:
        dmarc = policy.dmarc
        rua, takeover_dmarc = list(dmarc.rua), dmarc.takeover
        settings = (
            ("policy", dmarc.policy),
            ("subdomain_policy", dmarc.subdomain_policy),
            ("nonexistent_policy", dmarc.nonexistent_policy),
        )
        weaker = [
            f"{key} is {value.value}"
            for key, value in settings
            if value is not None and value is not DmarcPolicy.reject
        ]
        if dmarc.testing:
            weaker.append("testing is true (t=y applies reject as quarantine)")
        if weaker:
            ctx.find(
                Severity.ERROR,
                f"{ctx.domain} is parked, which publishes DMARC reject, but dmarc "
                f"{' and '.join(weaker)}",
                ctx.location("dmarc"),
                "under dmarc keep policy: reject and rua (reports are still useful), or "
                "remove parked: true",
                code="parked-dmarc-conflict",
            )
    if ctx.has_key("spf", "all") and policy.spf.all.value != "fail":
        ctx.find(
            Severity.ERROR,
            f"{ctx.domain} is parked, which publishes v=spf1 -all, but spf.all is "
            f"{policy.spf.all.value}",
            ctx.location("spf", "all"),
            "remove spf.all (parked domains fail all mail)",
            code="parked-spf-conflict",
        )
    _null_mx(ctx, "parked", OWNER)
    ctx.add(
        DesiredRecord(
            ctx.domain,
            "TXT",
            ctx.ttl,
            (PARKED_SPF,),
            OWNER,
            "spf",
            where,
            takeover=policy.spf.takeover,
        )
    )
    ctx.add(
        DesiredRecord(
            f"_dmarc.{ctx.domain}",
            "TXT",
            ctx.ttl,
            (parked_value(rua),),
            OWNER,
            "dmarc",
            where,
            takeover=takeover_dmarc,
        )
    )
    _host_spf(ctx)
    _wildcard(ctx, dkim.key_name("*", ctx.domain), dkim.REVOKED, "dkim")


HOST_TYPES = ("A", "AAAA", "MX")


def _host_spf(ctx: CompileContext) -> None:
    """`v=spf1 -all` at each host name of the zone (see the module docstring for
    why not a wildcard), unless the zone has its own SPF record there."""
    hosts = sorted(
        {
            name
            for rtype in HOST_TYPES
            for name in ctx.zone.under(ctx.domain, rtype)
            if name != ctx.domain and not name.startswith(("*", "_"))
        }
    )
    for name in hosts:
        if (name, "CNAME") in ctx.zone:
            continue  # cannot happen beside A/MX in a valid zone; never add to it
        if any(txt_kind_matches("spf", v) for v in ctx.zone.get((name, "TXT"), ())):
            continue  # the zone's own SPF record there is the zone's business
        ctx.add(
            DesiredRecord(
                name, "TXT", ctx.ttl, (PARKED_SPF,), OWNER, "spf", ctx.location("parked")
            )
        )


def _wildcard(ctx: CompileContext, name: str, value: str, kind: str) -> None:
    """A wildcard TXT (M3AAWG) unless the zone has its own record there that
    it would clash with: a CNAME, or a TXT of the same kind."""
    if (name, "CNAME") in ctx.zone:
        clash = "a CNAME"
    elif any(txt_kind_matches(kind, v) for v in ctx.zone.get((name, "TXT"), ())):
        clash = f"its own {kind.upper()} TXT record"
    else:
        ctx.add(DesiredRecord(name, "TXT", ctx.ttl, (value,), OWNER, kind, ctx.location("parked")))
        return
    ctx.find(
        Severity.WARNING,
        f"the zone has {clash} at {name}, so the parked-domain wildcard "
        f'"{value}" is not published there',
        ctx.location("parked"),
        f"remove the zone's record at {name} to get the M3AAWG wildcard",
        code="parked-wildcard-skipped",
    )


def _null_mx(ctx: CompileContext, key: str, owner: str) -> None:
    """Publish `MX 0 .`, unless the zone has other MX records: RFC 7505 §3 says
    a domain with a null MX "MUST NOT advertise any other MX RR"."""
    others = [v for v in ctx.zone.get((ctx.domain, "MX"), ()) if v.split() != mx.NULL.split()]
    if others:
        ctx.find(
            Severity.ERROR,
            f"{ctx.domain} is declared {'parked' if key == 'parked' else 'null MX'} "
            f"(receives no mail) but the zone has MX records: {', '.join(others)}",
            ctx.location(key),
            f"remove the MX records from the zone, or remove {key}: true",
            rfc="RFC 7505 §3",
            code="null-mx-conflict",
        )
        return
    ctx.add(DesiredRecord(ctx.domain, "MX", ctx.ttl, (mx.NULL,), owner, None, ctx.location(key)))


def _check_mx_senders(ctx: CompileContext) -> None:
    for i, sender in enumerate(ctx.lp.policy.senders):
        if sender.mx is True:
            ctx.find(
                Severity.WARNING,
                f"sender {sender.name!r} uses SPF mx, but {ctx.domain} has a null MX, so the "
                "mechanism matches no address and costs a lookup",
                ctx.location("senders", i, "mx"),
                "list the sending servers with ip4/ip6 or a: instead",
                code="null-mx-spf-mx",
            )

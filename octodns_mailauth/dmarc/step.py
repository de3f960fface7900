"""The DMARC step: the `_dmarc` record, report authorizations, and the checks
on what the record says (RFC 9989, RFC 9990)."""

from __future__ import annotations

from ..context import CompileContext
from ..findings import Location, Severity
from ..policy.dmarc import DmarcPolicy, DmarcPolicySettings
from ..records.base import DesiredRecord
from ..records.dmarc import AUTHORIZATION_VALUE, dmarc_value, parse_dmarc
from .orgdomain import is_public_suffix, organizational_domain
from .reports import EXTERNAL_DESTINATION_CODE, external_destinations
from .uri import parse_report_uri


def declared_org_domains(ctx: CompileContext) -> list[str]:
    """Domains this policy declares Organizational (psd=n, RFC 9989 §4.10.2)."""
    settings = ctx.lp.policy.dmarc
    if settings is not None and settings.public_suffix_domain is False:
        return [ctx.domain]
    return []


def dmarc_step(ctx: CompileContext) -> None:
    if ctx.result.details.parked:
        return  # the parked step publishes p=reject itself (parked.py)
    settings = ctx.lp.policy.dmarc
    org = organizational_domain(ctx.domain, declared_org_domains(ctx))
    if not ctx.lp.policy.senders:
        ctx.find(
            Severity.INFO,
            f"no senders: if {ctx.domain} sends no mail, publish a parked-domain policy "
            "(SPF -all, DMARC p=reject, null MX) so nobody can send as it",
            Location(ctx.lp.path, 1, "senders"),
            "declare the senders it has, or mark the domain parked",
            code="dmarc-no-senders",
        )
    if settings is None:
        if org != ctx.domain:
            # The organizational domain's record covers us, rua= included.
            detail = (
                f": receivers fall back to {org}'s record, apply its sp= (np= for names "
                f"that do not exist) and send reports to its rua="
            )
        else:
            detail = ": receivers get no instructions and you get no reports for it"
        ctx.find(
            Severity.WARNING,
            f"no DMARC policy for {ctx.domain}{detail}",
            Location(ctx.lp.path, 1, "dmarc"),
            "add `dmarc: {stage: monitor, rua: [mailto:...]}` to start monitoring",
            code="dmarc-missing",
            rfc="RFC 9989 §4.10",
        )
        return
    value = dmarc_value(settings)
    _self_check(ctx, value)
    ctx.add(
        DesiredRecord(
            f"_dmarc.{ctx.domain}",
            "TXT",
            ctx.ttl,
            (value,),
            "dmarc",
            "dmarc",
            ctx.location("dmarc"),
            takeover=settings.takeover,
        )
    )
    _check_settings(ctx, settings, org)
    _report_authorizations(ctx, settings)


def _self_check(ctx: CompileContext, value: str) -> None:
    # The settings model should make an invalid record impossible; if the parser
    # disagrees, say so rather than publish it silently.
    parsed = parse_dmarc(value)
    for problem in parsed.errors:
        ctx.find(
            Severity.ERROR,
            f"internal: the DMARC record we built is invalid ({problem.message}): {value}",
            ctx.location("dmarc"),
            "please report this",
            code="dmarc-internal",
            rfc=problem.rfc,
        )


def _check_settings(ctx: CompileContext, settings: DmarcPolicySettings, org: str) -> None:
    where = ctx.location("dmarc")
    if settings.p is DmarcPolicy.none and not settings.rua:
        ctx.find(
            Severity.WARNING,
            "p=none without rua=: the policy asks for nothing and no reports come back, "
            "so this monitors nothing",
            where,
            "add `rua: [mailto:dmarc-reports@...]` to see who sends as this domain",
            code="dmarc-monitor-no-rua",
            rfc="RFC 9989 §4.7",
        )
    for key, tag, value in (
        ("subdomain_policy", "sp", settings.subdomain_policy),
        ("nonexistent_policy", "np", settings.nonexistent_policy),
    ):
        if value is not None and value.strength < settings.p.strength:
            ctx.find(
                Severity.WARNING,
                f"{tag}={value.value} is weaker than p={settings.p.value}: mail forged from "
                f"{'subdomains' if tag == 'sp' else 'names that do not exist'} of "
                f"{ctx.domain} is treated more leniently than mail from {ctx.domain} itself",
                ctx.location("dmarc", key),
                f"remove {key} to inherit p=, unless a subdomain really still needs {tag}= "
                "at this level",
                code="dmarc-weaker-subdomain",
                rfc="RFC 9989 §4.7",
            )
    if settings.failure_options and not settings.ruf:
        ctx.find(
            Severity.WARNING,
            "failure_options (fo=) without ruf=: fo= only matters for failure reports, "
            "so it is not published",
            ctx.location("dmarc", "failure_options"),
            "add ruf: [mailto:...] or remove failure_options",
            code="dmarc-fo-without-ruf",
            rfc="RFC 9989 §4.7",
        )
    _check_legacy(ctx, settings)
    for tag in ("rua", "ruf"):
        for i, uri in enumerate(getattr(settings, tag)):
            if parse_report_uri(uri).size is not None:
                ctx.find(
                    Severity.WARNING,
                    f"{uri}: the !size suffix is obsolete syntax; RFC 9989 reporters ignore it",
                    ctx.location("dmarc", tag, i),
                    "drop the !size suffix",
                    code="dmarc-size-obsolete",
                    rfc="RFC 9989 §4.8",
                )
    _check_psd(ctx, settings, org)


def _check_legacy(ctx: CompileContext, settings: DmarcPolicySettings) -> None:
    legacy = settings.legacy
    if legacy is None:
        return
    for tag in ("pct", "rf", "ri"):
        if getattr(legacy, tag) is None:
            continue
        extra = ""
        if tag == "pct" and legacy.pct != 100:
            extra = (
                f"; RFC 9989 receivers apply the policy to all failing mail, not {legacy.pct}%"
                " (use `testing: true` for a gentler rollout)"
            )
        ctx.find(
            Severity.WARNING,
            f"{tag}= is published because legacy.{tag} asks for it, but RFC 9989 removed "
            f"it{extra}",
            ctx.location("dmarc", "legacy", tag),
            f"remove legacy.{tag} once RFC 7489-only receivers no longer matter",
            code="dmarc-legacy-tag",
            rfc="RFC 9989 App. C.5.2",
        )


def _check_psd(ctx: CompileContext, settings: DmarcPolicySettings, org: str) -> None:
    psd = settings.public_suffix_domain
    where = ctx.location("dmarc", "public_suffix_domain")
    if psd is True and not is_public_suffix(ctx.domain):
        ctx.find(
            Severity.WARNING,
            f"public_suffix_domain: true (psd=y) but the Public Suffix List does not list "
            f"{ctx.domain}: receivers will treat names below it as separate organizations",
            where,
            "psd=y is for public suffix operators (registries, shared hosting); remove it "
            "otherwise",
            code="dmarc-psd",
            rfc="RFC 9989 §4.10.2",
        )
    elif psd is False and organizational_domain(ctx.domain) != ctx.domain:
        ctx.find(
            Severity.INFO,
            f"public_suffix_domain: false (psd=n) makes {ctx.domain} its own Organizational "
            f"Domain (the Public Suffix List says {organizational_domain(ctx.domain)}); "
            "alignment is judged against it",
            where,
            code="dmarc-psd",
            rfc="RFC 9989 §4.10.2",
        )
    elif psd is None and org != ctx.domain:
        ctx.find(
            Severity.INFO,
            f"{ctx.domain} is a subdomain of {org}: this record replaces {org}'s sp=/np= for "
            f"{ctx.domain}; names below {ctx.domain} without a record of their own still "
            f"fall back to {org}'s",
            ctx.location("dmarc"),
            code="dmarc-subdomain",
            rfc="RFC 9989 §4.10.1",
        )


def _report_authorizations(ctx: CompileContext, settings: DmarcPolicySettings) -> None:
    for dest in external_destinations(
        ctx.domain, settings.rua, settings.ruf, declared_org_domains(ctx)
    ):
        name = dest.authorization_name(ctx.domain)
        index = getattr(settings, dest.tag).index(dest.uri)
        where = ctx.location("dmarc", dest.tag, index)
        ctx.add(
            DesiredRecord(
                name,
                "TXT",
                ctx.ttl,
                (AUTHORIZATION_VALUE,),
                f"dmarc report authorization for {ctx.domain}",
                "dmarc",
                where,
            )
        )
        ctx.find(
            Severity.WARNING,
            f"{dest.tag} {dest.uri} is outside {ctx.domain}'s organizational domain: receivers "
            f"send reports there only if {dest.host} publishes "
            f'{name}. TXT "{AUTHORIZATION_VALUE}" (published for you if {dest.host} is a '
            "zone of this octoDNS config that runs the processor)",
            where,
            f"ask the owner of {dest.host} to publish that record (report services often "
            f"publish *._report._dmarc.{dest.host} for every customer)",
            code=EXTERNAL_DESTINATION_CODE,
            rfc="RFC 9990 §4",
        )

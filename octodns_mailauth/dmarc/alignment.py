"""DMARC alignment per sender (RFC 9989 §4.4) and the rollout stage.

For each declared sender: the identifiers its mail carries (the MAIL FROM
domain SPF checks, the DKIM d= domains it signs with), whether each aligns with
the policy domain under the policy's relaxed or strict modes, and a verdict.
A sender that cannot align blocks quarantine/reject unless acknowledged; one
aligned by SPF alone is warned about, because forwarding breaks SPF and only an
aligned DKIM signature survives it.
"""

from __future__ import annotations

from ..catalog import CatalogError, render
from ..context import CompileContext, SenderFacts
from ..findings import Severity
from ..names import normalize
from ..outcome import AlignmentRow, StageReport, Verdict
from ..policy.dmarc import Alignment, DmarcPolicy, DmarcPolicySettings, Stage
from .orgdomain import aligned
from .step import declared_org_domains

_NEXT = {Stage.monitor: Stage.quarantine, Stage.quarantine: Stage.reject, Stage.reject: None}


def effective_policy(settings: DmarcPolicySettings) -> DmarcPolicy:
    """What receivers apply to failing mail: t=y takes one step off (RFC 9989 §4.7)."""
    return settings.p.weaker() if settings.testing else settings.p


def alignment_step(ctx: CompileContext) -> None:
    if ctx.result.details.parked:
        # Sends nothing, publishes p=reject (parked.py): nothing to align, nothing next.
        ctx.result.details.alignment = []
        ctx.result.details.dmarc_stage = StageReport("parked", False, None, [])
        return
    settings = ctx.lp.policy.dmarc
    # A sender with errors already has its error; a guess at its alignment
    # would be a second, misleading message.
    senders = [facts for facts in ctx.result.senders if facts.complete]
    rows = [_row(ctx, facts, settings) for facts in senders]
    ctx.result.details.alignment = rows
    enforced = settings is not None and effective_policy(settings) is not DmarcPolicy.none
    for facts, row in zip(senders, rows, strict=True):
        _findings(ctx, facts, row, settings, enforced)
    ctx.result.details.dmarc_stage = _stage(rows, settings)


# --- one sender --------------------------------------------------------------------------


def _row(
    ctx: CompileContext, facts: SenderFacts, settings: DmarcPolicySettings | None
) -> AlignmentRow:
    strict_spf = settings is not None and settings.spf_alignment is Alignment.strict
    strict_dkim = settings is not None and settings.dkim_alignment is Alignment.strict
    declared = declared_org_domains(ctx)
    sender = ctx.lp.policy.senders[facts.index]
    domains = list(dict.fromkeys(normalize(d) for d in facts.dkim_domains))
    note = None
    default_d = _default_d(facts)
    if default_d is not None:
        entry = facts.provider
        assert entry is not None
        if _custom_d(facts) in domains:
            note = (
                f"{entry.name} signs as {default_d} until it has verified the DKIM records "
                f"for {ctx.domain} and signing with them is on (some providers need it "
                "switched on in their console)"
            )
        elif default_d not in domains:
            domains.append(default_d)
    spf_ok = facts.mail_from is not None and aligned(
        facts.mail_from, ctx.domain, strict_spf, declared
    )
    # A d= counts once a key was seen for it: ours, pasted, or found at the
    # delegated target (dkim/delegation.py); otherwise it is "unverified".
    dkim_ok = any(
        aligned(d, ctx.domain, strict_dkim, declared)
        for d in domains
        if d not in facts.unverified_dkim
    )
    unverified = not dkim_ok and any(
        aligned(d, ctx.domain, strict_dkim, declared) for d in facts.unverified_dkim
    )
    if dkim_ok:
        verdict = Verdict.DKIM
    elif unverified:
        verdict = Verdict.UNVERIFIED
    else:
        verdict = Verdict.SPF_ONLY if spf_ok else Verdict.NONE
    return AlignmentRow(
        facts.name,
        facts.provider.id if facts.provider else None,
        facts.mail_from,
        spf_ok,
        tuple(domains),
        dkim_ok,
        verdict,
        sender.unaligned_ok,
        note,
        unverified,
    )


def _render(template: str, values: dict[str, object] | None) -> str | None:
    if values is None:
        return None
    try:
        return normalize(render(template, values))
    except CatalogError:
        return None


def _default_d(facts: SenderFacts) -> str | None:
    entry = facts.provider
    if entry is None or entry.dkim is None or entry.dkim.default_d is None:
        return None
    return _render(entry.dkim.default_d, facts.params)


def _custom_d(facts: SenderFacts) -> str | None:
    entry = facts.provider
    if entry is None or entry.dkim is None:
        return None
    return _render(entry.dkim.d, facts.params)


def _fixes(ctx: CompileContext, facts: SenderFacts, row: AlignmentRow) -> list[str]:
    """How this sender could align: a custom return-path, a custom DKIM key."""
    entry = facts.provider
    sender = ctx.lp.policy.senders[facts.index]
    given = set(sender.params)
    out = []
    if entry is None:
        if not row.dkim_aligned:
            out.append(
                f"give it a DKIM key: `dkim: {{selector: ..., algorithm: ed25519}}` under "
                f"senders[{facts.index}]"
            )
        if not row.spf_aligned:
            out.append(f"or send with a return-path under {ctx.domain} (return_path:)")
        return out
    if not row.dkim_aligned and entry.dkim is not None:
        missing = [p for p in entry.dkim.requires if p not in given]
        if missing:
            # The parameters' help is in the provider-no-dkim finding: named once here.
            out.append(f"custom DKIM: give {', '.join(missing)}")
        else:
            out.append(f"custom DKIM: turn on DKIM signing for {ctx.domain} in {entry.name}")
    elif not row.dkim_aligned:
        out.append(f"{entry.name} has no custom DKIM in the catalog")
    if not row.spf_aligned:
        rp = entry.return_path
        if rp is not None and rp.domain:
            missing = [p for p in rp.requires if p not in given]
            text = "custom return-path (bounce domain)"
            if missing:
                text += ": give " + ", ".join(missing)
            out.append(text)
        else:
            out.append(
                f"{entry.name} has no custom return-path in the catalog, so SPF cannot align"
            )
    return out


def _findings(
    ctx: CompileContext,
    facts: SenderFacts,
    row: AlignmentRow,
    settings: DmarcPolicySettings | None,
    enforced: bool,
) -> None:
    where = facts.location or ctx.location("senders", facts.index)
    label = facts.label
    ids = (
        f"SPF checks {row.mail_from or 'nothing'}, DKIM signs as "
        f"{', '.join(row.dkim_domains) or 'nothing'}"
    )
    if row.verdict is Verdict.NONE:
        fixes = _fixes(ctx, facts, row)
        hint = "; ".join(fixes) + (
            "; or, if it truly cannot align, set unaligned_ok: <why> on the sender"
        )
        if row.acknowledged:
            ctx.find(
                Severity.INFO,
                f"{label} cannot align ({ids}); acknowledged: {row.acknowledged}",
                where,
                code="align-acknowledged",
                rfc="RFC 9989 §4.4",
            )
        else:
            tail = "this blocks quarantine and reject"
            if enforced:
                assert settings is not None
                p = effective_policy(settings).value
                fate = "rejected" if p == "reject" else "sent to spam"
                tail = f"at p={p} its mail will be {fate}"
            ctx.find(
                Severity.ERROR if enforced else Severity.WARNING,
                f"{label} cannot pass DMARC: {ids}, neither aligned with {ctx.domain}; {tail}",
                where,
                hint,
                code="align-none",
                rfc="RFC 9989 §4.4",
            )
    elif row.verdict is Verdict.SPF_ONLY:
        fixes = [f for f in _fixes(ctx, facts, row) if f.startswith(("custom DKIM", "give"))]
        ctx.find(
            Severity.WARNING,
            f"{label} passes DMARC by SPF only ({ids}): forwarded mail fails SPF, and only "
            "an aligned DKIM signature survives forwarding",
            where,
            "; ".join(fixes) or "sign its mail with DKIM for this domain",
            code="align-spf-only",
            rfc="RFC 9989 §4.4",
        )
    elif row.verdict is Verdict.UNVERIFIED:
        fallback = "by SPF only" if row.spf_aligned else "not at all"
        ctx.find(
            Severity.WARNING,
            f"{label}: its DKIM alignment is unverified ({ids}): no key at the selectors' "
            f"CNAME targets is verified, so until one is its mail passes DMARC {fallback}",
            where,
            "see the DKIM target warnings; once the vendor publishes the keys, refresh the lock",
            code="align-dkim-unverified",
            rfc="RFC 9989 §4.4",
        )
    if enforced and row.verdict is Verdict.DKIM and _ed25519_only(ctx, facts):
        assert settings is not None
        ctx.find(
            Severity.WARNING,
            f"{label} signs only with Ed25519 keys at p={effective_policy(settings).value}: "
            "many receivers do not verify Ed25519 signatures (RFC 8463) yet, so there its "
            "mail passes DMARC only by SPF, which forwarding breaks",
            where,
            f"add an RSA selector beside it (dual signing): under senders[{facts.index}].dkim "
            "add `{selector: <name>, algorithm: rsa}`, or `algorithms: [ed25519, rsa]` for a "
            "rotating key, and sign with both",
            code="align-ed25519-only",
            rfc="RFC 8463 §1",
        )
    if row.note:
        ctx.find(Severity.INFO, f"{label}: {row.note}", where, code="align-dkim-pending")


def _ed25519_only(ctx: CompileContext, facts: SenderFacts) -> bool:
    """The sender's aligned DKIM rests on its own Ed25519 keys alone: no RSA key of
    its own and no provider key (vendors sign with RSA) verified for the domain."""
    keys = ctx.lp.policy.senders[facts.index].dkim
    if not keys:
        return False
    algorithms = {a for key in keys for a in key.rotation_algorithms}
    if algorithms != {"ed25519"}:
        return False
    vendor = facts.delegated_d or (
        _custom_d(facts) if facts.provider and facts.provider.dkim else None
    )
    return vendor is None or vendor in facts.unverified_dkim or vendor not in facts.dkim_domains


# --- the rollout stage -------------------------------------------------------------------


def _stage(rows: list[AlignmentRow], settings: DmarcPolicySettings | None) -> StageReport:
    if settings is None:
        return StageReport.no_record()
    stage = settings.current_stage
    blockers: list[str] = []
    unaligned = [r for r in rows if r.verdict is Verdict.NONE and not r.acknowledged]
    blockers += [
        f"sender {r.sender} cannot align (MAIL FROM {r.mail_from or '-'}, DKIM d= "
        f"{', '.join(r.dkim_domains) or '-'})"
        for r in unaligned
    ]
    if settings.testing:
        nxt: str | None = "testing off (t=y removed)"
    else:
        following = _NEXT[stage]
        nxt = following.value if following else None
    if stage is Stage.monitor and not settings.rua:
        blockers.append("no rua= reports: you cannot see who fails before enforcing")
    unverified = [
        f"sender {r.sender}'s DKIM keys are unverified (not found at their CNAME targets)"
        for r in rows
        if r.verdict is Verdict.UNVERIFIED
    ]
    blockers += unverified
    if nxt == Stage.reject.value or (settings.testing and stage is Stage.reject):
        blockers += [
            f"sender {r.sender} passes by SPF only: forwarded mail would be rejected"
            for r in rows
            if r.verdict is Verdict.SPF_ONLY
        ]
    # Fully enforced has no next step, but unverified senders are still said.
    return StageReport(stage.value, settings.testing, nxt, blockers if nxt else unverified)


def stage_step(ctx: CompileContext) -> None:
    """The stage finding, once the report evidence (reports/gate.py) has added
    its blockers: with no evidence it says so rather than "nothing blocks"."""
    report = ctx.result.details.dmarc_stage
    settings = ctx.lp.policy.dmarc
    if settings is None or report.stage == "parked":
        return
    where = ctx.location("dmarc")
    label = f"DMARC stage {report.stage}{' (testing)' if report.testing else ''}"
    gate = ctx.result.details.evidence
    if report.next is None and report.blockers:
        ctx.find(
            Severity.INFO,
            f"{label}, but not every sender is verified: " + "; ".join(report.blockers),
            where,
            code="dmarc-stage",
        )
    elif report.next is None:
        ctx.find(Severity.INFO, "DMARC stage reject: fully enforced", where, code="dmarc-stage")
    elif report.blockers:
        ctx.find(
            Severity.INFO,
            f"{label}: before {report.next}, fix: " + "; ".join(report.blockers),
            where,
            code="dmarc-stage",
        )
    elif gate is None or gate.state in ("unconfigured", "empty"):
        ctx.find(
            Severity.INFO,
            f"{label}: no declared sender blocks {report.next}, but there is no report "
            "evidence yet: mail from sources nobody declared would fail too; read the "
            "aggregate reports (`octodns-mailauth reports ingest`) before moving on",
            where,
            code="dmarc-stage",
        )
    else:
        ctx.find(
            Severity.INFO,
            f"{label}: nothing blocks {report.next}: {gate.summary()}",
            where,
            code="dmarc-stage",
        )

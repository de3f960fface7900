"""The rollout gate that reads evidence: a compile step.

For the next DMARC stage it says how many messages of the last N days would
have been quarantined or rejected, and from which sources; it warns (or fails,
per `reports.gate`) while a declared sender fails DMARC in the reports or an
undeclared source sends real volume that fails; and with no evidence it says
there is none.  The evidence is read at the edge (processor, CLI) and handed
in, so the step stays pure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..context import CompileContext
from ..findings import Severity
from ..outcome import GateReport, StageReport

if TYPE_CHECKING:  # the store and attribution load only when there is evidence
    from .attribution import Attribution
    from .settings import ReportsSettings
    from .store import EvidenceInput


def _next_policy(ctx: CompileContext, stage: StageReport) -> str | None:
    settings = ctx.lp.policy.dmarc
    if stage.next in ("quarantine", "reject"):
        return str(stage.next)
    if stage.next is not None:  # testing off: p= itself applies
        return str(settings.p.value)
    return str(settings.p.value) if settings.p.value != "none" else None


def evidence_step(ctx: CompileContext) -> None:
    stage = ctx.result.details.dmarc_stage
    if stage.stage in ("parked", "none") or ctx.lp.policy.dmarc is None:
        ctx.result.details.evidence = None
        return
    given: EvidenceInput | None = getattr(ctx, "evidence", None)
    policy = _next_policy(ctx, stage)
    if given is None:
        ctx.result.details.evidence = GateReport("unconfigured", stage.next, policy)
        return
    settings = given.settings
    ev = given.evidence
    where = ctx.location("dmarc")
    report = GateReport(
        "empty", stage.next, policy, settings.days, settings.db, settings.min_messages
    )
    ctx.result.details.evidence = report
    if ev is None or not ev.rows:
        ctx.find(Severity.INFO, report.summary(), where, code="evidence-none")
        return
    # Lazy: compile imports this module for every policy; attribution (and the
    # report store under it) is needed only where reports were ingested.
    from .attribution import attribute, declared_senders, vendor_index

    declared = declared_senders(ctx.lp, ctx.result, ctx.resolver)
    att = report.attribution = attribute(ev, declared, vendor_index(ctx.catalog))
    report.state = "clear" if stage.next else "enforced"
    failing = [(f"sender {s.name}", s.failing) for s in att.senders.values()]
    failing += [(f"undeclared {u.label}", u.failing) for u in att.undeclared]
    report.by_source = sorted((f for f in failing if f[1]), key=lambda x: (-x[1], x[0]))
    report.would_fail = att.total.failing if policy else 0
    if stage.next:
        _blockers(ctx, report, att, settings)
    ctx.find(Severity.INFO, report.summary(), where, code="evidence-gate")
    if report.blockers:
        ctx.result.details.dmarc_stage = replace(
            stage, blockers=list(stage.blockers) + report.blockers
        )


def _blockers(
    ctx: CompileContext, report: GateReport, att: Attribution, settings: ReportsSettings
) -> None:
    severity = Severity.ERROR if settings.gate == "fail" else Severity.WARNING
    action = report.action or "affected"
    at = f"at p={report.policy}" if report.policy else "at the next stage"
    index = {facts.name: facts for facts in ctx.result.senders}
    for ev in att.senders.values():
        if ev.failing < settings.min_messages or ev.acknowledged:
            continue
        text = (
            f"sender {ev.name}: {ev.failing} of {ev.messages} messages in the reports of the "
            f"last {settings.days} days failed DMARC (not aligned)"
        )
        report.blockers.append(text)
        facts = index.get(ev.name)
        where = facts.location if facts is not None and facts.location else ctx.location("dmarc")
        ctx.find(
            severity,
            f"{text}; {at} they would be {action}",
            where,
            "see `octodns-mailauth explain` for how this sender aligns; the reports show "
            "which addresses fail (`octodns-mailauth reports html`)",
            code="evidence-sender-fails",
            rfc="RFC 9990",
        )
    for src in att.undeclared:
        if src.failing < settings.min_messages:
            continue
        likely = f", likely the catalog provider {src.provider}" if src.provider else ""
        text = (
            f"undeclared source {src.label} ({len(src.addresses)} "
            f"address{'es' if len(src.addresses) != 1 else ''}{likely}): {src.failing} "
            f"messages in the last {settings.days} days failed DMARC"
        )
        report.blockers.append(text)
        hint = (
            f"declare it: a sender with provider: {src.provider} (`octodns-mailauth reports "
            "suggest` writes the change)"
            if src.provider
            else "find out who sends from these addresses; declare them as a sender (ip4/ip6 "
            "and DKIM) or stop them"
        )
        ctx.find(
            severity,
            f"{text}; {at} they would be {action}",
            ctx.location("dmarc"),
            hint,
            code="evidence-undeclared",
            rfc="RFC 9990",
        )
    if report.blockers:
        report.state = "blocked"

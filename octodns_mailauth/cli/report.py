"""What `explain` and the Markdown report show for one domain: the SPF lookup
budget per sender, the DMARC alignment table, the DMARC stage and what blocks
the next one.

It reads the compile result's details (`details["spf"]`, `details["alignment"]`)
when the steps provide them, and otherwise derives a simpler view from the
sender facts, saying so, rather than failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..dns.lockfile import REFRESH_COMMAND
from ..findings import Finding, Severity
from .render import md_table

NEXT_STAGE = {"none": "quarantine", "quarantine": "reject", "reject": None}
LOOKUP_MECHANISMS = ("include", "a", "mx", "ptr", "exists", "redirect")


@dataclass
class AlignmentRow:
    sender: str
    mail_from: str | None
    spf_aligned: bool | None
    dkim_domains: list[str]
    dkim_aligned: bool | None
    acknowledged: str | None = None

    @property
    def passes(self) -> bool | None:
        if self.spf_aligned or self.dkim_aligned:
            return True
        if self.spf_aligned is None and self.dkim_aligned is None:
            return None
        return False


@dataclass
class DomainReport:
    domain: str
    result: Any
    spf_lines: list[str] = field(default_factory=list)
    spf_total: int | None = None
    spf_per_sender: dict[str, int] = field(default_factory=dict)
    spf_note: str | None = None
    alignment: list[AlignmentRow] = field(default_factory=list)
    alignment_text: list[str] | None = None
    alignment_markdown: str | None = None
    stage: str | None = None
    next_stage: str | None = None
    blockers: list[str] = field(default_factory=list)
    evidence: Any = None  # reports.gate.GateReport: what the DMARC reports say


def build(lp: Any, result: Any) -> DomainReport:
    report = DomainReport(lp.domain, result)
    _spf(report, lp, result)
    _alignment(report, lp, result)
    _stage(report, lp, result)
    return report


# --- SPF ---------------------------------------------------------------------------------


def _spf_value(result: Any) -> str | None:
    for r in result.records:
        if r.name == result.domain and r.kind == "spf":
            return str(r.values[0])
    return None


def _sender_of_term(lp: Any, result: Any, term: str) -> str:
    """Which sender asked for an SPF term (the compile keeps this per term)."""
    target = term.split(":", 1)[1] if ":" in term else None
    for facts in result.senders:
        sender = lp.policy.senders[facts.index]
        entry = facts.provider
        if target and entry is not None and entry.spf_include == target:
            return str(sender.name)
        if target and target in sender.include:
            return str(sender.name)
        mech = term.split(":", 1)[0].split("/", 1)[0]
        value = getattr(sender, mech, None) if mech in ("a", "mx") else None
        if value is True and target is None:
            return str(sender.name)
        if isinstance(value, list) and target in value:
            return str(sender.name)
    return "?"


def _spf(report: DomainReport, lp: Any, result: Any) -> None:
    _spf_counted(report, lp, result)
    skipped = result.details.get("spf_not_followed")
    if skipped:
        # A number that leaves out what the includes cost would read as the count.
        report.spf_total = None
        report.spf_per_sender = {}
        head = f"{result.domain}  not counted: {len(skipped)} include target(s) not followed"
        report.spf_lines[:1] = [head]
        report.spf_note = (
            "not followed (no answer in the lock): " + ", ".join(skipped) + "; run "
            f"`{REFRESH_COMMAND}` to record them, then the lookups are counted"
        )


def _spf_counted(report: DomainReport, lp: Any, result: Any) -> None:
    tree = result.details.get("spf")
    value = _spf_value(result)
    if tree is not None and hasattr(tree, "render"):
        report.spf_lines = list(tree.render())
        # Every sender, in policy order; those with addresses only cost nothing.
        report.spf_per_sender = {facts.name: 0 for facts in result.senders}
        report.spf_total = int(tree.total)
        per = result.details.get("spf_per_sender")
        if isinstance(per, dict):
            # The SPF step's own count: flattened-in terms keep their sender, the
            # links of a size split show as "split records", and it sums to the total.
            for who, n in per.items():
                report.spf_per_sender[who] = report.spf_per_sender.get(who, 0) + int(n)
            return
        for child in getattr(tree, "children", []):
            via = child.via or child.domain
            sender = _sender_of_term(lp, result, via)
            report.spf_per_sender[sender] = report.spf_per_sender.get(sender, 0) + child.cost
        # Terms at the top level that query DNS but lead to no record (a, mx...).
        counted = {c.via for c in getattr(tree, "children", [])}
        for term in (value or "").split()[1:]:
            mech = term.lstrip("+-~?").split(":", 1)[0].split("/", 1)[0]
            if mech in LOOKUP_MECHANISMS and term not in counted:
                sender = _sender_of_term(lp, result, term.lstrip("+-~?"))
                report.spf_per_sender[sender] = report.spf_per_sender.get(sender, 0) + 1
        return
    if value is None:
        report.spf_note = "no SPF record is published for this domain"
        return
    # No lookup tree from the compile (no SPF lock yet): count the top level only.
    total = 0
    for term in value.split()[1:]:
        bare = term.lstrip("+-~?")
        mech = bare.split(":", 1)[0].split("/", 1)[0].split("=", 1)[0]
        if mech in LOOKUP_MECHANISMS:
            total += 1
            sender = _sender_of_term(lp, result, bare)
            report.spf_per_sender[sender] = report.spf_per_sender.get(sender, 0) + 1
    report.spf_total = total
    report.spf_lines = [f"{result.domain}  {value}"]
    report.spf_note = (
        "nested includes were not resolved (no SPF lock file): the count covers the top "
        f"level only; run `{REFRESH_COMMAND}` to lock third-party records"
    )


# --- alignment ---------------------------------------------------------------------------


def _org(domain: str) -> str:
    from publicsuffixlist import PublicSuffixList

    return str(_psl(PublicSuffixList).privatesuffix(domain) or domain)


_PSL: Any = None


def _psl(cls: Any) -> Any:
    global _PSL
    if _PSL is None:
        _PSL = cls()
    return _PSL


def _aligned(identity: str | None, domain: str, strict: bool) -> bool | None:
    """RFC 7489 §3.1: strict = same FQDN, relaxed = same Organizational Domain."""
    if identity is None:
        return None
    if strict:
        return identity == domain
    return _org(identity) == _org(domain)


def _alignment(report: DomainReport, lp: Any, result: Any) -> None:
    rows = result.details.get("alignment")
    if rows is not None:
        # The DMARC step's own rows and renderers (dmarc/alignment.py).
        try:
            from ..dmarc import alignment as module
        except ImportError:  # pragma: no cover - older core
            module = None
        render = getattr(module, "render_alignment_table", None)
        render_md = getattr(module, "render_alignment_markdown", None)
        if callable(render):
            report.alignment_text = str(render(rows)).splitlines()
        if callable(render_md):
            report.alignment_markdown = str(render_md(rows))
        for row in rows:
            report.alignment.append(
                AlignmentRow(
                    str(row.sender),
                    row.mail_from,
                    bool(row.spf_aligned),
                    list(row.dkim_domains),
                    bool(row.dkim_aligned),
                    getattr(row, "acknowledged", None),
                )
            )
        return
    # No alignment detail from the compile: judge from the sender facts ourselves.
    dmarc = lp.policy.dmarc
    strict_spf = _is_strict(dmarc, "spf_alignment")
    strict_dkim = _is_strict(dmarc, "dkim_alignment")
    for facts in result.senders:
        sender = lp.policy.senders[facts.index]
        dkim = [_aligned(d, result.domain, strict_dkim) for d in facts.dkim_domains]
        report.alignment.append(
            AlignmentRow(
                facts.name,
                facts.mail_from,
                _aligned(facts.mail_from, result.domain, strict_spf),
                list(facts.dkim_domains),
                any(dkim) if dkim else False,
                getattr(sender, "unaligned_ok", None),
            )
        )


def _is_strict(dmarc: Any, attr: str) -> bool:
    value = getattr(dmarc, attr, None) if dmarc is not None else None
    return str(getattr(value, "value", value)) in ("strict", "s")


# --- DMARC stage -------------------------------------------------------------------------


def _stage(report: DomainReport, lp: Any, result: Any) -> None:
    detail = result.details.get("dmarc_stage")
    report.evidence = result.details.get("evidence")
    if detail is not None:
        report.stage = str(detail.stage) + (" (testing, t=y)" if detail.testing else "")
        report.next_stage = detail.next
        report.blockers = list(detail.blockers)
        return
    # No stage detail from the compile: derive it from the policy.
    dmarc = lp.policy.dmarc
    if dmarc is None:
        report.stage = "none (no DMARC record)"
        report.next_stage = "monitor"
        report.blockers = ["add a dmarc: section to start monitoring"]
        return
    policy = getattr(dmarc, "policy", None) or getattr(dmarc, "p", None)
    report.stage = str(getattr(policy, "value", policy))
    report.next_stage = NEXT_STAGE.get(report.stage)
    if report.next_stage is None:
        return
    for row in report.alignment:
        if row.passes is False and not row.acknowledged:
            report.blockers.append(
                f"sender {row.sender} cannot align (MAIL FROM {row.mail_from or '-'}, DKIM d= "
                f"{', '.join(row.dkim_domains) or '-'})"
            )
    if report.stage == "none" and not getattr(dmarc, "rua", None):
        report.blockers.append("no rua= reports: you cannot see who fails before enforcing")


# --- text and markdown -------------------------------------------------------------------


def _mark(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[value]


def text(report: DomainReport) -> str:
    out = [f"{report.domain}", ""]
    out.append("SPF lookups (RFC 7208 §4.6.4: at most 10)")
    out += ["  " + line for line in report.spf_lines] or ["  (none)"]
    if report.spf_per_sender:
        out.append(
            "  per sender: " + ", ".join(f"{s} {n}" for s, n in report.spf_per_sender.items())
        )
    if report.spf_note:
        out.append(f"  note: {report.spf_note}")
    out += ["", "DMARC alignment (RFC 7489 §3.1, RFC 9989 §4.4)"]
    if report.alignment_text:
        out += ["  " + line for line in report.alignment_text]
    else:
        rows = [_alignment_cells(r) for r in report.alignment]
        from .render import table

        header = ["sender", "MAIL FROM", "SPF aligned", "DKIM d=", "DKIM aligned", "verdict"]
        out += ["  " + line for line in table(rows, header).splitlines()]
    out += ["", f"DMARC stage: {report.stage}"]
    if report.next_stage:
        if report.blockers:
            out.append(f"  before {report.next_stage}, fix:")
            out += [f"  - {b}" for b in report.blockers]
        else:
            out.append(f"  {_clear(report)}")
    elif report.blockers:
        out.append("  enforced, but:")
        out += [f"  - {b}" for b in report.blockers]
    else:
        out.append("  fully enforced")
    if report.evidence is not None:
        out.append(f"  evidence: {report.evidence.summary()}")
    return "\n".join(out)


def _no_evidence(report: DomainReport) -> bool:
    return report.evidence is None or report.evidence.state in ("unconfigured", "empty")


def _clear(report: DomainReport) -> str:
    """No blockers: "nothing blocks" only when the reports say so too."""
    if _no_evidence(report):
        return (
            f"no declared sender blocks {report.next_stage}; without report evidence, mail "
            "from undeclared sources is unknown"
        )
    return f"nothing blocks {report.next_stage}"


def markdown(report: DomainReport, records_md: bool = True) -> str:
    r = report.result
    out = [f"### {report.domain}", ""]
    shown = [f for f in r.findings if f.severity is not Severity.INFO]
    if shown:
        out.append(
            md_table(
                ["severity", "where", "message"],
                [[f.severity.value, str(f.location or ""), _finding_text(f)] for f in shown],
            )
        )
        out.append("")
    if records_md:
        out.append("**Records**")
        out.append("")
        rows = []
        for rec in sorted(r.records, key=lambda x: (x.name, x.type)):
            for value in rec.values:
                rows.append([f"`{rec.name}`", rec.type, rec.ttl, f"`{value}`", rec.owner])
        out.append(md_table(["name", "type", "TTL", "value", "owner"], rows))
        out.append("")
    if report.spf_total is None:
        out.append("**SPF lookup budget:** not counted (includes not followed)")
    else:
        out.append(f"**SPF lookup budget:** {report.spf_total} of 10")
    out.append("")
    if report.spf_per_sender:
        out.append(md_table(["sender", "lookups"], report.spf_per_sender.items()))
        out.append("")
    if report.spf_lines:
        out += ["```", *report.spf_lines, "```", ""]
    if report.spf_note:
        out += [f"_{report.spf_note}_", ""]
    out.append("**DMARC alignment**")
    out.append("")
    if report.alignment_markdown:
        out.append(report.alignment_markdown)
    else:
        out.append(
            md_table(
                ["sender", "MAIL FROM", "SPF aligned", "DKIM d=", "DKIM aligned", "verdict"],
                [_alignment_cells(row) for row in report.alignment],
            )
        )
    out.append("")
    if report.next_stage:
        state = (
            "blocked by: " + "; ".join(report.blockers)
            if report.blockers
            else "no declared sender blocks it, but there is no report evidence"
            if _no_evidence(report)
            else "nothing blocks it"
        )
        out.append(f"**DMARC stage:** {report.stage}; next: {report.next_stage}: {state}")
    elif report.blockers:
        out.append(
            f"**DMARC stage:** {report.stage} (enforced, but: {'; '.join(report.blockers)})"
        )
    else:
        out.append(f"**DMARC stage:** {report.stage} (fully enforced)")
    out.append("")
    if report.evidence is not None:
        out += [f"**Report evidence:** {report.evidence.summary()}", ""]
    return "\n".join(out)


def _alignment_cells(row: Any) -> list[str]:
    return [
        row.sender,
        row.mail_from or "-",
        _mark(row.spf_aligned),
        ", ".join(row.dkim_domains) or "-",
        _mark(row.dkim_aligned),
        _mark(row.passes) + (" (acknowledged)" if row.acknowledged else ""),
    ]


def _finding_text(f: Finding) -> str:
    return f.detail()

"""What `explain` and the Markdown report show for one domain: the SPF lookup
budget per sender, the DMARC alignment table, the DMARC stage and what blocks
the next one; and the Markdown report for a pull request (`validate --format
markdown`, written to `$GITHUB_STEP_SUMMARY`) with every domain's.

Everything here is rendering: the figures are the compile's own
(`CompileResult.details`, outcome.py), so the CLI cannot disagree with
`validate` or the processor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..context import CompileResult
from ..dns.lockfile import REFRESH_COMMAND
from ..findings import Finding, Severity
from ..outcome import AlignmentRow, GateReport, StageReport, Verdict
from ..policy.loader import LoadedPolicy
from .render import md_table, spf_tree_lines, table


@dataclass
class DomainReport:
    domain: str
    result: CompileResult
    spf_lines: list[str] = field(default_factory=list)
    spf_total: int | None = None  # None: not counted (includes not followed)
    spf_per_sender: dict[str, int] = field(default_factory=dict)
    spf_note: str | None = None


def build(lp: LoadedPolicy, result: CompileResult) -> DomainReport:
    report = DomainReport(lp.domain, result)
    _spf(report, result)
    return report


def _stage(stage: StageReport) -> str:
    return stage.stage + (" (testing, t=y)" if stage.testing else "")


# --- SPF ---------------------------------------------------------------------------------


def _spf(report: DomainReport, result: CompileResult) -> None:
    details = result.details
    tree = details.spf
    if tree is None:
        # Parked (the parked step publishes `v=spf1 -all`) or no SPF record at all.
        apex = [r for r in result.records if r.name == result.domain and r.kind == "spf"]
        values = [r.values[0] for r in apex]
        report.spf_lines = [f"{result.domain}  {v}" for v in values]
        report.spf_total = 0 if values else None
        if not values:
            report.spf_note = "no SPF record is published for this domain"
        return
    if details.spf_not_followed:
        # A number that leaves out what the includes cost would read as the count.
        skipped = details.spf_not_followed
        report.spf_lines = [
            f"{result.domain}  not counted: {len(skipped)} include target(s) not followed"
        ]
        report.spf_note = (
            "not followed (no answer in the lock): " + ", ".join(skipped) + "; run "
            f"`{REFRESH_COMMAND}` to record them, then the lookups are counted"
        )
        return
    report.spf_lines = spf_tree_lines(tree)
    report.spf_total = tree.total
    # Every sender, in policy order; those with addresses only cost nothing.  The
    # SPF step's own count: flattened-in terms keep their sender, the links of a
    # size split show as "split records", and it sums to the total.
    report.spf_per_sender = {facts.name: 0 for facts in result.senders}
    for who, n in details.spf_per_sender.items():
        report.spf_per_sender[who] = report.spf_per_sender.get(who, 0) + n


# --- alignment ---------------------------------------------------------------------------

_HEADER = ("sender", "MAIL FROM", "SPF aligned", "DKIM d=", "DKIM aligned", "verdict")


def _cells(row: AlignmentRow) -> list[str]:
    verdict = row.verdict.value
    if row.verdict is Verdict.NONE and row.acknowledged:
        verdict += " (acknowledged)"
    return [
        row.sender + (f" ({row.provider})" if row.provider else ""),
        row.mail_from or "-",
        "yes" if row.spf_aligned else "no",
        ", ".join(row.dkim_domains) or "-",
        "unverified" if row.dkim_unverified else "yes" if row.dkim_aligned else "no",
        verdict,
    ]


def alignment_table(rows: list[AlignmentRow]) -> str:
    """Plain text, columns padded, a rule under the header, for terminals."""
    lines = table([_cells(r) for r in rows], _HEADER).splitlines()
    return "\n".join([lines[0], "".join(" " if c == " " else "-" for c in lines[0]), *lines[1:]])


def alignment_markdown(rows: list[AlignmentRow]) -> str:
    return md_table(_HEADER, [_cells(r) for r in rows])


# --- text and markdown -------------------------------------------------------------------


def text(report: DomainReport) -> str:
    stage, evidence = report.result.details.dmarc_stage, report.result.details.evidence
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
    out += ["  " + line for line in alignment_table(report.result.details.alignment).splitlines()]
    out += ["", f"DMARC stage: {_stage(stage)}"]
    if stage.next:
        if stage.blockers:
            out.append(f"  before {stage.next}, fix:")
            out += [f"  - {b}" for b in stage.blockers]
        elif _no_evidence(evidence):
            out.append(
                f"  no declared sender blocks {stage.next}; without report evidence, mail "
                "from undeclared sources is unknown"
            )
        else:
            out.append(f"  nothing blocks {stage.next}")
    elif stage.blockers:
        out.append("  enforced, but:")
        out += [f"  - {b}" for b in stage.blockers]
    else:
        out.append("  fully enforced")
    if evidence is not None:
        out.append(f"  evidence: {evidence.summary()}")
    return "\n".join(out)


def _no_evidence(evidence: GateReport | None) -> bool:
    """ "Nothing blocks" only when the reports say so too."""
    return evidence is None or evidence.state in ("unconfigured", "empty")


def markdown(report: DomainReport) -> str:
    r = report.result
    stage, evidence = r.details.dmarc_stage, r.details.evidence
    out = [f"### {report.domain}", ""]
    out += _findings_markdown([f for f in r.findings if f.severity is not Severity.INFO])
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
    out.append(alignment_markdown(r.details.alignment))
    out.append("")
    if stage.next:
        state = (
            "blocked by: " + "; ".join(stage.blockers)
            if stage.blockers
            else "no declared sender blocks it, but there is no report evidence"
            if _no_evidence(evidence)
            else "nothing blocks it"
        )
        out.append(f"**DMARC stage:** {_stage(stage)}; next: {stage.next}: {state}")
    elif stage.blockers:
        out.append(
            f"**DMARC stage:** {_stage(stage)} (enforced, but: {'; '.join(stage.blockers)})"
        )
    else:
        out.append(f"**DMARC stage:** {_stage(stage)} (fully enforced)")
    out.append("")
    if evidence is not None:
        out += [f"**Report evidence:** {evidence.summary()}", ""]
    return "\n".join(out)


def _findings_markdown(findings: list[Finding], text: Any = Finding.detail) -> list[str]:
    if not findings:
        return []
    rows = [[f.severity.value, str(f.location or ""), text(f)] for f in findings]
    return [md_table(["severity", "where", "message"], rows), ""]


def validate_markdown(ws: Any, results: list[tuple[Any, Any]], findings: list[Finding]) -> str:
    """Every finding, then each domain's section (`markdown`)."""
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = sum(f.severity is Severity.WARNING for f in findings)
    icon = ":x:" if errors else ":white_check_mark:"
    out = [
        f"## {icon} Mail policy: {len(results)} domains, {errors} errors, {warnings} warnings",
        "",
    ]
    # Findings from files that did not load have no domain section: list them first.
    loose = list(ws.load_findings) + ws.zone_findings()
    out += _findings_markdown(loose, lambda f: f.message)
    for lp, result in results:
        out.append(markdown(build(lp, result)))
    if ws.keys.placeholders:
        selectors = ", ".join(f"{s} ({d})" for d, s in ws.keys.placeholders)
        out.append(
            f"_DKIM keys not generated yet, p= shown as placeholders: {selectors}. The "
            "keys come from `octodns-mailauth dkim keygen` (or a sync with generate_keys: true)._"
        )
    return "\n".join(out).rstrip() + "\n"

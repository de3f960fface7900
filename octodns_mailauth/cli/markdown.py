"""The Markdown report for a pull request (`validate --format markdown`, written
to `$GITHUB_STEP_SUMMARY`): the findings, then per domain the records, the SPF
lookup budget and the alignment table."""

from __future__ import annotations

from typing import Any

from ..findings import Finding, Severity
from . import report as domain_report
from .render import md_table


def report(ws: Any, results: list[tuple[Any, Any]], findings: list[Finding]) -> str:
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = sum(f.severity is Severity.WARNING for f in findings)
    icon = ":x:" if errors else ":white_check_mark:"
    out = [
        f"## {icon} Mail policy: {len(results)} domains, {errors} errors, {warnings} warnings",
        "",
    ]
    # Findings from files that did not load have no domain section: list them first.
    loose = list(ws.load_findings) + ws.zone_findings()
    if loose:
        out.append(
            md_table(
                ["severity", "where", "message"],
                [[f.severity.value, str(f.location or ""), f.message] for f in loose],
            )
        )
        out.append("")
    for lp, result in results:
        out.append(domain_report.markdown(domain_report.build(lp, result)))
    if ws.keys.placeholders:
        selectors = ", ".join(f"{s} ({d})" for d, s in ws.keys.placeholders)
        out.append(
            f"_DKIM keys not generated yet, p= shown as placeholders: {selectors}. The "
            "keys come from `octodns-mailauth dkim keygen` (or a sync with generate_keys: true)._"
        )
    return "\n".join(out).rstrip() + "\n"

"""`validate`: every policy (or those given) compiled offline; findings as
`file:line: severity: message`, JSON, or a Markdown report for CI summaries."""

from __future__ import annotations

import argparse
import sys

from ..findings import Finding, Severity
from .exitcodes import EXIT_OK, EXIT_POLICY
from .render import dumps, finding_dict, record_dict, summary
from .settings import resolve
from .workspace import load


def run(args: argparse.Namespace) -> int:
    settings = resolve(args)
    ws = load(settings, args.paths)
    findings: list[Finding] = list(ws.load_findings) + ws.zone_findings()
    results = []
    for lp in ws.policies:
        result = ws.compile(lp)
        results.append((lp, result))
        findings.extend(result.findings)
    # With --config: the processor's merge into each zone read from the YAML
    # sources, so conflicts octodns-sync would reject fail here first.
    findings.extend(ws.merge_findings(results))
    findings.extend(ws.source_findings())
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if args.format == "json":
        _json(ws, results, findings)
    elif args.format == "markdown":
        from .report import validate_markdown  # lazy: the explain report, for CI only

        print(validate_markdown(ws, results, findings))
    else:
        if args.quiet:
            shown = errors
        elif args.verbose:
            shown = findings
        else:
            # The report evidence for the next DMARC stage is stated even when clear.
            shown = [
                f
                for f in findings
                if f.severity is not Severity.INFO or f.code in ("evidence-gate", "evidence-none")
            ]
        for f in shown:
            print(f.format())
        if not args.quiet or errors:
            # Files that failed to load still count as policies in the summary.
            unloaded = {f.location.file for f in ws.load_findings if f.location}
            print(summary(findings, len(ws.policies) + len(unloaded)), file=sys.stderr)
    return EXIT_POLICY if errors else EXIT_OK


def _json(ws: object, results: list, findings: list[Finding]) -> None:
    placeholders = ws.placeholder_names  # type: ignore[attr-defined]
    data = {
        "ok": not any(f.severity is Severity.ERROR for f in findings),
        "errors": sum(f.severity is Severity.ERROR for f in findings),
        "warnings": sum(f.severity is Severity.WARNING for f in findings),
        "findings": [finding_dict(f) for f in findings],
        "policies": [
            {
                "domain": lp.domain,
                "file": lp.path,
                "records": [record_dict(r, placeholders) for r in result.records],
            }
            for lp, result in results
        ],
    }
    print(dumps(data))

"""`explain DOMAIN`: the SPF lookup tree with the count per sender, the DMARC
alignment table per sender, the DMARC stage and what blocks the next one."""

from __future__ import annotations

import argparse

from ..findings import Severity
from . import report
from .exitcodes import EXIT_OK, EXIT_POLICY
from .settings import resolve
from .workspace import load


def run(args: argparse.Namespace) -> int:
    ws = load(resolve(args))
    lp = ws.policy_for(args.domain)
    result = ws.compile(lp)
    rep = report.build(lp, result)
    if args.format == "markdown":
        print(report.markdown(rep))
    else:
        print(report.text(rep))
        shown = [f for f in result.findings if f.severity is not Severity.INFO]
        if shown:
            print("\nFindings")
            for f in shown:
                print("  " + f.format())
    return EXIT_POLICY if result.errors else EXIT_OK

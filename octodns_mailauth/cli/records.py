"""`records DOMAIN`: the records the processor would publish, as a table,
octoDNS YAML or BIND zone-file lines."""

from __future__ import annotations

import argparse
import sys

from ..findings import Severity
from . import EXIT_OK, EXIT_POLICY
from .settings import resolve
from .workspace import load


def run(args: argparse.Namespace) -> int:
    from . import render

    ws = load(resolve(args))
    lp = ws.policy_for(args.domain)
    result = ws.compile(lp)
    errors = [f for f in result.findings if f.severity is Severity.ERROR]
    for f in result.findings:
        if f.severity is not Severity.INFO:
            print(f.format(), file=sys.stderr)
    if errors:
        print(f"{lp.domain}: not published: the policy has errors", file=sys.stderr)
        return EXIT_POLICY
    records = result.records
    if args.format == "octodns":
        print(render.records_octodns(records, ws.zone_for(lp.domain)), end="")
    elif args.format == "bind":
        print(render.records_bind(records))
    elif args.format == "json":
        print(render.dumps([render.record_dict(r) for r in records]))
    else:
        print(render.records_table(records))
    for domain, selector in ws.keys.placeholders:
        print(
            f"note: DKIM selector {selector} of {domain} has no key in the keystore yet; its "
            "p= value above is a placeholder: the processor generates the key on the first "
            "octodns-sync",
            file=sys.stderr,
        )
    return EXIT_OK

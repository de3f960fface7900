"""`records DOMAIN`: the records the processor would publish, as a table,
octoDNS YAML or BIND zone-file lines."""

from __future__ import annotations

import argparse
import sys

from ..findings import Severity
from . import render
from .exitcodes import EXIT_OK, EXIT_POLICY
from .settings import resolve
from .workspace import load


def run(args: argparse.Namespace) -> int:
    ws = load(resolve(args))
    lp = ws.policy_for(args.domain)
    result = ws.compile(lp)
    # The processor's merge into the zone from the config's YAML sources.
    zone_errors = [f for f in ws.zone_findings() if f.location and f.location.file == lp.path]
    findings = zone_errors + list(result.findings) + ws.merge_findings([(lp, result)])
    errors = [f for f in findings if f.severity is Severity.ERROR]
    for f in findings:
        if f.severity is not Severity.INFO:
            print(f.format(), file=sys.stderr)
    if errors:
        print(f"{lp.domain}: not published: the policy has errors", file=sys.stderr)
        return EXIT_POLICY
    records = result.records
    # Never silent: a placeholder p= is marked in every format, not only on stderr.
    placeholders = ws.placeholder_names
    if args.format == "octodns":
        print(render.records_octodns(records, ws.zone_for(lp.domain), placeholders), end="")
    elif args.format == "bind":
        print(render.records_bind(records, placeholders))
    elif args.format == "json":
        print(render.dumps([render.record_dict(r, placeholders) for r in records]))
    else:
        print(render.records_table(records, placeholders))
    for domain, selector in ws.keys.placeholders:
        print(
            f"note: DKIM selector {selector} of {domain} has no key in the keystore yet; its "
            "p= value above is a placeholder until the key exists (`octodns-mailauth dkim "
            "keygen`, or the processor with generate_keys: true)",
            file=sys.stderr,
        )
    return EXIT_OK

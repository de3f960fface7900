"""`mta-sts policy`: the MTA-STS policy files (RFC 8461 §3.2) the web server at
`https://mta-sts.<domain>/.well-known/mta-sts.txt` must serve."""

from __future__ import annotations

import argparse
import sys

from .. import mtasts
from ..errors import PolicyError
from .exitcodes import EXIT_OK, EXIT_POLICY
from .settings import UsageError, resolve
from .workspace import load


def run(args: argparse.Namespace) -> int:
    ws = load(resolve(args))
    results = []
    try:
        ws.require_loaded()
        for lp in [ws.policy_for(args.domain)] if args.domain else ws.policies:
            result = ws.compile(lp)
            if result.errors:
                raise PolicyError(result.errors)
            results.append(result)
    except PolicyError as e:
        # Standard output is the policy document: findings never go into it.
        for f in e.findings:
            print(f.format(), file=sys.stderr)
        return EXIT_POLICY
    if args.output:
        for path in mtasts.write_policy_files(results, args.output):
            print(f"wrote {path}")
        return EXIT_OK
    files = mtasts.policy_files(results)
    if not files:
        raise UsageError(
            f"no MTA-STS policy for {args.domain or 'any domain'}: add an `mta_sts:` section"
        )
    if len(files) > 1:
        raise UsageError("several domains have MTA-STS policies: name one, or give --output DIR")
    print(next(iter(files.values())), end="")
    return EXIT_OK

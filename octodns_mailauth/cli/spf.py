"""`lock refresh` (alias `spf refresh`): resolve the third-party records the policies depend on,
live, rewrite the lock file and show what changed upstream."""

from __future__ import annotations

import argparse
import functools
import sys
import time

from ..compile import walk_dns
from ..dns.lockfile import DEFAULT_LOCK_NAME
from ..spf.refresh import refresh_lock
from .exitcodes import EXIT_OK, EXIT_POLICY
from .livedns import live_resolver
from .settings import UsageError, resolve
from .workspace import load

# One attempt never waits longer than this, so a retry fits in the deadline.
ATTEMPT_TIMEOUT = 2.0


def run(args: argparse.Namespace) -> int:
    # The deadline counts from the start: loading policies is part of the command.
    deadline = time.monotonic() + args.timeout
    ws = load(resolve(args))
    if ws.load_findings:
        for f in ws.load_findings:
            print(f.format(), file=sys.stderr)
        raise UsageError("fix the policy files before refreshing the SPF lock")
    lock_path = ws.settings.spf_lock or ws.policies_dir() / DEFAULT_LOCK_NAME
    if not lock_path.parent.is_dir():
        raise UsageError(f"SPF lock {lock_path}: folder {lock_path.parent} does not exist")
    attempt = min(ATTEMPT_TIMEOUT, args.timeout)
    with live_resolver(args.nameserver, attempt, deadline=deadline) as resolver:
        diff = refresh_lock(
            functools.partial(walk_dns, ws.policies, ws.catalog),
            lock_path,
            resolver,
            accept_gone=args.accept_gone,
            accept_widening=args.accept_widening,
            rebuild=args.rebuild,
        )
    for line in diff.render():
        print(line)
    if diff.failures or diff.gone:
        state = (
            "the lock was left unchanged"
            if not diff.written
            else "their old answers, and those of the names below them, were kept in the lock"
        )
        problems = [f"{len(diff.failures)} lookup(s) failed"] if diff.failures else []
        if diff.gone:
            problems.append(f"{len(diff.gone)} name(s) that answered before did not")
        raise UsageError(
            f"{' and '.join(problems)} via {resolver.source} (deadline {args.timeout:g} s); "
            f"{state}; run again when DNS answers"
        )
    if diff.widened:
        print(
            f"octodns-mailauth: {len(diff.widened)} include(s) would authorise far more "
            "addresses than before: review the ranges above, then rerun with --accept-widening",
            file=sys.stderr,
        )
        return EXIT_POLICY
    return EXIT_OK

"""`lock refresh` (alias `spf refresh`): resolve the third-party records the policies depend on,
live, rewrite the lock file and show what changed upstream."""

from __future__ import annotations

import argparse
import functools
import sys
import time

from ..compile import walk_dns
from ..dns.lockfile import lock_path as default_lock_path
from ..spf.refresh import LockDiff, refresh_lock
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
    ws.require_loaded()
    lock_path = default_lock_path(ws.settings.spf_lock, ws.policies_dir())
    if not lock_path.parent.is_dir():
        raise UsageError(f"SPF lock {lock_path}: folder {lock_path.parent} does not exist")
    attempt = min(ATTEMPT_TIMEOUT, args.timeout)
    with live_resolver(args.nameserver, attempt, deadline=deadline) as resolver:
        diff = refresh_lock(
            functools.partial(walk_dns, ws.policies, ws.inputs.catalog),
            lock_path,
            resolver,
            accept_gone=args.accept_gone,
            accept_widening=args.accept_widening,
            rebuild=args.rebuild,
        )
    for line in diff_lines(diff):
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


def diff_lines(diff: LockDiff) -> list[str]:
    """What `lock refresh` prints about a LockDiff."""
    if diff.rebuilt:
        lines = [f"{diff.path}: rebuilt from DNS; the old file was unreadable: {diff.rebuilt}"]
    elif not diff.written:
        lines = [f"{diff.path}: not rewritten"]
    elif not diff.changes:
        lines = [f"{diff.path}: no upstream change"]
    else:
        lines = [f"{diff.path}: {len(diff.changes)} name(s) changed upstream"]
    for change in diff.changes:
        if change.before is None:
            lines.append(f"+ {change.name} (new)")
        elif change.after is None:
            lines.append(f"- {change.name} (no longer needed)")
        else:
            lines.append(f"~ {change.name}")
        lines.extend(f"    + {r}" for r in change.added)
        lines.extend(f"    - {r}" for r in change.removed)
        lines.extend(f"    {o}" for o in change.other)
    lines.extend(f"! {f}" for f in diff.failures)
    lines.extend(f"! {g}" for g in diff.gone)
    lines.extend(f"! {w}" for w in diff.widened)
    if diff.kept:
        lines.append(
            f"! kept the old answers for {len(diff.kept)} name(s) below the failed "
            "lookups, not asked this time: " + ", ".join(diff.kept)
        )
    if diff.widened and not diff.written:
        lines.append(f"! held for review: {diff.path} was left unchanged")
    elif not diff.written:
        lines.append(f"! no lookup succeeded: {diff.path} was left unchanged")
    elif diff.failures or diff.gone:
        lines.append(
            "! the lock's 'refreshed' time and the kept answers' 'resolved' times were "
            "not advanced"
        )
    return lines

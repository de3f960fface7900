"""`spf refresh`: resolve the third-party SPF records the policies depend on,
live, rewrite the lock file and show what changed upstream."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import EXIT_OK
from .livedns import parse_nameserver
from .settings import UsageError, resolve
from .workspace import Workspace, load


def run(args: argparse.Namespace) -> int:
    from ..spf.lock import DEFAULT_LOCK_NAME

    ws = load(resolve(args))
    if ws.load_findings:
        for f in ws.load_findings:
            print(f.format(), file=sys.stderr)
        raise UsageError("fix the policy files before refreshing the SPF lock")
    lock_path = ws.settings.spf_lock or ws.policies_dir() / DEFAULT_LOCK_NAME
    if not lock_path.parent.is_dir():
        raise UsageError(f"SPF lock {lock_path}: folder {lock_path.parent} does not exist")
    if args.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    diff = _refresh(ws, lock_path, args.nameserver, args.timeout)
    for line in diff.render():
        print(line)
    if diff.failures:
        # Old answers under the failed names were kept (nothing written if nothing answered).
        state = (
            "the lock was left unchanged"
            if not diff.written
            else "their old answers, and those of the names below them, were kept in the lock"
        )
        raise UsageError(
            f"{len(diff.failures)} lookup(s) failed via "
            f"{args.nameserver or 'the system resolver'}; {state}; run again when DNS answers"
        )
    return EXIT_OK


def _refresh(ws: Workspace, lock_path: Path, nameserver: str | None, timeout: float) -> Any:
    """Through the project's live resolver (concurrent, cached per run)."""
    from ..live_resolver import LiveResolver
    from ..spf.lock import refresh_lock

    servers = None
    if nameserver:
        host, port = parse_nameserver(nameserver)  # validated here: exit 2 on nonsense
        servers = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    with LiveResolver(servers, timeout=timeout, retries=1) as resolver:
        return refresh_lock(ws.policies, lock_path, resolver, catalog=ws.catalog)

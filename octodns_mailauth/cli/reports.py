"""`reports ingest|suggest|html`: DMARC and SMTP TLS reports as evidence.

ingest stores reports in the evidence database; suggest prints the policy
change the evidence calls for as a diff; html writes a static page.  The
database comes from --db, else from the processor's `reports: {db: ...}`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..reports.ingest import lookup_reverse_dns
from ..reports.store import EvidenceStore
from ..reports.suggest import Suggestion, suggest
from .exitcodes import EXIT_OK
from .livedns import live_resolver
from .reports_html import write_page
from .settings import UsageError, reports_over, resolve
from .workspace import load


def run(args: argparse.Namespace) -> int:
    if args.reports_command == "ingest":
        return _ingest(args)
    settings = resolve(args)
    reports = reports_over(settings.reports, str(db_path(args, settings)), args.days, "--days")
    settings = replace(settings, reports=reports)
    ws = load(settings)
    policies = [ws.policy_for(d) for d in args.domain] if args.domain else list(ws.policies)
    if args.reports_command == "html":
        print(f"wrote {write_page(ws, policies, Path(args.output))}")
        return EXIT_OK
    suggestions = []
    for lp in policies:
        text = Path(lp.path).read_text(encoding="utf-8")
        suggestions.append(suggest(lp, ws.compile(lp), ws.inputs.catalog, text))
    print(render_markdown(suggestions) if args.format == "markdown" else render_text(suggestions))
    return EXIT_OK


def db_path(args: argparse.Namespace, settings: Any) -> Path:
    if args.db:
        return Path(args.db)
    if settings.reports is not None:
        return Path(settings.reports.db)
    raise UsageError(
        "no reports database: give --db FILE, or set `reports: {db: FILE}` in the mail "
        "policy processor's settings and give --config"
    )


def _ingest(args: argparse.Namespace) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give at least 1")
    path = db_path(args, resolve(args))
    with EvidenceStore(path) as store:
        stats = store.ingest_paths(args.paths, jobs=args.jobs)
        if not args.quiet:
            for refused in stats.refused:
                print(f"{refused.source}: refused: {refused.reason}")
        if args.reverse_dns:
            with live_resolver(args.nameserver, args.timeout) as resolver:
                named = lookup_reverse_dns(store, resolver)
            print(f"reverse DNS: {named} source addresses named", file=sys.stderr)
    print(f"{path}: {stats.summary()}")
    return EXIT_OK


def render_text(suggestions: list[Suggestion]) -> str:
    parts = []
    for s in suggestions:
        head = [f"# {s.domain}: {c}" for c in s.changes] + [
            f"# {s.domain}: note: {n}" for n in s.notes
        ]
        parts.append("\n".join(head) + ("\n" + s.diff() if s.changes else ""))
    return "\n".join(p.rstrip("\n") for p in parts if p)


def render_markdown(suggestions: list[Suggestion]) -> str:
    out = ["## Policy changes the DMARC reports suggest", ""]
    for s in suggestions:
        out.append(f"### {s.domain}")
        out.append("")
        out += [f"- {c}" for c in s.changes] or ["- no change"]
        out += [f"- _note:_ {n}" for n in s.notes]
        if s.changes:
            out += ["", "```diff", s.diff().rstrip("\n"), "```"]
        out.append("")
    return "\n".join(out)

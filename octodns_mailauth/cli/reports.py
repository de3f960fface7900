"""`reports ingest|suggest|html`: DMARC and SMTP TLS reports as evidence.

ingest stores reports in the evidence database; suggest prints the policy
change the evidence calls for as a diff; html writes a static page.  The
database comes from --db, else from the processor's `reports: {db: ...}`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..reports.ingest import lookup_reverse_dns
from ..reports.settings import ReportsSettings
from ..reports.store import EvidenceStore
from ..reports.suggest import Suggestion, suggest_all
from .exitcodes import EXIT_OK
from .livedns import live_resolver
from .reports_html import write_page
from .settings import Settings, UsageError, read_config, resolve
from .workspace import load


def run(args: argparse.Namespace) -> int:
    if args.reports_command == "ingest":
        return _ingest(args)
    if args.reports_command == "suggest":
        return _suggest(args)
    return _html(args)


def _settings(args: argparse.Namespace) -> Any:
    if args.reports_command == "ingest":
        if getattr(args, "config", None):
            return read_config(Path(args.config), getattr(args, "processor", None))
        return Settings()
    return resolve(args)


def db_path(args: argparse.Namespace, settings: Any) -> Path:
    if getattr(args, "db", None):
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
    settings = _settings(args)
    path = db_path(args, settings)
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


def evidence_window(args: argparse.Namespace, settings: Any) -> tuple[Any, int]:
    """The reports settings with --db/--days applied, and the window in days."""
    base = settings.reports
    db = str(db_path(args, settings))
    days = args.days if getattr(args, "days", None) else (base.days if base else 30)
    if days < 1:
        raise UsageError(f"--days {days}: give at least 1")
    data = base.model_dump() if base else {}
    data.update(db=db, days=days)
    return ReportsSettings.model_validate(data), days


def _suggest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.reports, _ = evidence_window(args, settings)
    ws = load(settings)
    policies = _chosen(ws, args.domain)
    suggestions = suggest_all(ws, policies)
    print(render_markdown(suggestions) if args.format == "markdown" else render_text(suggestions))
    return EXIT_OK


def _html(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.reports, _ = evidence_window(args, settings)
    ws = load(settings)
    policies = _chosen(ws, args.domain)
    out = write_page(ws, policies, Path(args.output))
    print(f"wrote {out}")
    return EXIT_OK


def _chosen(ws: Any, domains: list[str]) -> list[Any]:
    if not domains:
        return list(ws.policies)
    return [ws.policy_for(d) for d in domains]


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

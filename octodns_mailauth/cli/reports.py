"""`reports ingest|suggest|html`: DMARC and SMTP TLS reports as evidence.

ingest stores reports in the evidence database; suggest prints the policy
change the evidence calls for as a diff; html writes a static page.  The
database comes from --db, else from the processor's `reports: {db: ...}`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .exitcodes import EPILOG, EXIT_OK
from .exitcodes import Parser as _Parser


def add_parser(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    action: Callable[..., argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
    dns_flags: Callable[[argparse.ArgumentParser, str], None],
) -> None:
    p = sub.add_parser(
        "reports",
        help="DMARC and SMTP TLS reports: ingest, suggest policy changes, HTML page",
        description="DMARC aggregate and SMTP TLS reports as evidence for the policy",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rsub = p.add_subparsers(dest="reports_command", metavar="ACTION", parser_class=_Parser)
    rsub.required = True

    def db_flags(rp: argparse.ArgumentParser) -> None:
        rp.add_argument(
            "--db",
            metavar="FILE",
            help="the evidence database (default: the processor's reports.db in --config)",
        )

    rp = action(
        rsub,
        "ingest",
        "store DMARC aggregate and SMTP TLS reports (XML, JSON, gzip, zip, .eml, mbox)",
        "store DMARC aggregate reports (RFC 9990 and RFC 7489-era XML, parsedmarc JSON) "
        "and SMTP TLS reports (RFC 8460 JSON) found in files and folders, as attachments "
        "of mail messages (.eml, mbox) or gzip/zip archives; a report stored before counts "
        "once; one that is not usable is refused with its reason",
    )
    rp.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    db_flags(rp)
    g = rp.add_argument_group("where the settings are")
    g.add_argument("--config", metavar="FILE", help="octoDNS config with the mail processor")
    g.add_argument("--processor", metavar="ID", help="which processor, if several")
    rp.add_argument(
        "--reverse-dns",
        action="store_true",
        help="look up the PTR name of each new source address (live DNS), to name its "
        "organisation",
    )
    dns_flags(rp, "ask this resolver for PTR names; default: the system resolver")
    rp.add_argument("--quiet", "-q", action="store_true", help="print the summary only")

    rp = action(
        rsub,
        "suggest",
        "print the policy change the evidence calls for, as a diff for a pull request",
        "print the policy change the evidence calls for as a unified diff of the policy "
        "files: declare a recognised undeclared source with its catalog provider, drop an "
        "SPF include no source used, advance the DMARC stage, add np=reject",
    )
    rp.add_argument("domain", nargs="*", help="only these domains (default: every policy)")
    common(rp)
    db_flags(rp)
    rp.add_argument("--days", type=int, metavar="N", help="window (default: reports.days or 30)")
    rp.add_argument("--format", choices=["text", "markdown"], default="text")

    rp = action(
        rsub,
        "html",
        "write a static HTML page of the evidence (no server, no external assets)",
    )
    rp.add_argument("domain", nargs="*", help="only these domains (default: every policy)")
    rp.add_argument("--output", "-o", metavar="DIR", required=True, help="write DIR/index.html")
    common(rp)
    db_flags(rp)
    rp.add_argument("--days", type=int, metavar="N", help="window (default: reports.days or 30)")


def run(args: argparse.Namespace) -> int:
    if args.reports_command == "ingest":
        return _ingest(args)
    if args.reports_command == "suggest":
        return _suggest(args)
    return _html(args)


def _settings(args: argparse.Namespace) -> Any:
    from .settings import Settings, read_config, resolve

    if args.reports_command == "ingest":
        if getattr(args, "config", None):
            return read_config(Path(args.config), getattr(args, "processor", None))
        return Settings()
    return resolve(args)


def db_path(args: argparse.Namespace, settings: Any) -> Path:
    from .settings import UsageError

    if getattr(args, "db", None):
        return Path(args.db)
    if settings.reports is not None:
        return Path(settings.reports.db)
    raise UsageError(
        "no reports database: give --db FILE, or set `reports: {db: FILE}` in the mail "
        "policy processor's settings and give --config"
    )


def _ingest(args: argparse.Namespace) -> int:
    from ..reports.ingest import read_paths
    from ..reports.store import EvidenceStore

    settings = _settings(args)
    path = db_path(args, settings)
    with EvidenceStore(path) as store:
        stats = store.ingest(read_paths(args.paths))
        if not args.quiet:
            for refused in stats.refused:
                print(f"{refused.source}: refused: {refused.reason}")
        if args.reverse_dns:
            from ..reports.ingest import lookup_reverse_dns
            from .livedns import live_resolver

            with live_resolver(args.nameserver, args.timeout) as resolver:
                named = lookup_reverse_dns(store, resolver)
            print(f"reverse DNS: {named} source addresses named", file=sys.stderr)
    print(f"{path}: {stats.summary()}")
    return EXIT_OK


def evidence_window(args: argparse.Namespace, settings: Any) -> tuple[Any, int]:
    """The reports settings with --db/--days applied, and the window in days."""
    from ..reports.settings import ReportsSettings

    base = settings.reports
    db = str(db_path(args, settings))
    days = args.days if getattr(args, "days", None) else (base.days if base else 30)
    from .settings import UsageError

    if days < 1:
        raise UsageError(f"--days {days}: give at least 1")
    data = base.model_dump() if base else {}
    data.update(db=db, days=days)
    return ReportsSettings.model_validate(data), days


def _suggest(args: argparse.Namespace) -> int:
    from ..reports.suggest import render_markdown, render_text, suggest_all
    from .workspace import load

    settings = _settings(args)
    settings.reports, _ = evidence_window(args, settings)
    ws = load(settings)
    policies = _chosen(ws, args.domain)
    suggestions = suggest_all(ws, policies)
    print(render_markdown(suggestions) if args.format == "markdown" else render_text(suggestions))
    return EXIT_OK


def _html(args: argparse.Namespace) -> int:
    from .reports_html import write_page
    from .workspace import load

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

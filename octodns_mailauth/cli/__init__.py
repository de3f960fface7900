"""`octodns-mailauth`: validate, show, explain and check mail policy.

Exit codes: 0 ok; 1 policy errors (or drift, for `check`); 2 usage or
environment errors (bad flags, a missing file, an unreadable lock, DNS that
does not answer).  Each command lives in its own module, imported only when
it runs, so `validate` (run by pre-commit on every commit) starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..errors import KeyUnavailable, MailAuthError, PolicyError
from .exitcodes import EPILOG, EXIT_OK, EXIT_POLICY, EXIT_USAGE
from .exitcodes import Parser as _Parser
from .settings import UsageError

__all__ = ["EXIT_OK", "EXIT_POLICY", "EXIT_USAGE", "build_parser", "main"]


def _dns_flags(p: argparse.ArgumentParser, nameserver_help: str, timeout: float = 5.0) -> None:
    p.add_argument("--nameserver", metavar="HOST[:PORT]", help=nameserver_help)
    p.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        metavar="SECONDS",
        help=f"deadline for every DNS query of the command together (default {timeout:g})",
    )


def _action(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    help: str,
    description: str | None = None,
    aliases: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """One COMMAND, or one ACTION of a command group (`dkim rotate`), with the shared epilog."""
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        aliases=list(aliases),
        help=help,
        description=description or help,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where the policies are")
    g.add_argument(
        "--config",
        metavar="FILE",
        help="octoDNS config: settings come from its octodns_mailauth.MailAuthProcessor, and "
        "each zone's records from its YamlProvider sources (other sources are not read), so "
        "checks that need the zone (MX, TXT beside SPF, CNAME conflicts) run as in octodns-sync",
    )
    g.add_argument("--processor", metavar="ID", help="which processor, if the config has several")
    g.add_argument("--policies", metavar="DIR", help="folder of policy files (overrides --config)")
    g.add_argument("--keys", metavar="DIR", help="DKIM keystore folder (overrides --config)")
    g.add_argument("--spf-lock", metavar="FILE", help="SPF lock file (overrides --config)")
    g.add_argument(
        "--catalog",
        metavar="DIR",
        action="append",
        help="extra sender catalog folder (repeatable; overrides --config)",
    )


def _evidence_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("report evidence (DMARC aggregate reports)")
    g.add_argument(
        "--reports-db",
        metavar="FILE",
        help="the evidence database `reports ingest` fills (overrides the processor's reports.db)",
    )
    g.add_argument(
        "--reports-days", type=int, metavar="N", help="how many days of reports the gate reads"
    )


class _Unused:
    """Stands in for the parser of a command that is not running: takes its
    arguments and keeps nothing (see build_parser)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command` (a name or alias), only that
    command's arguments: `validate` runs at every commit, and building some
    twenty parsers it does not use would cost it more than reading its config.
    An unknown `command` builds everything, for argparse's own message."""
    parser = _Parser(
        prog="octodns-mailauth",
        description="Mail authentication policy (SPF, DKIM, DMARC) as code for octoDNS.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    built: list[str] = []

    def add(name: str, help: str, aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        if command is not None and command != name and command not in aliases:
            return _Unused()  # type: ignore[return-value]
        built.append(name)
        return _action(sub, name, help, aliases=aliases)

    p = add("validate", "check policy files offline and print every finding")
    p.add_argument("paths", nargs="*", metavar="PATH", help="policy files or folders")
    _common(p)
    _evidence_flags(p)
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    p.add_argument("--quiet", "-q", action="store_true", help="print errors only")
    p.add_argument("--verbose", "-v", action="store_true", help="print informational findings too")

    p = add("records", "show the exact records the processor would publish for a domain")
    p.add_argument("domain")
    _common(p)
    p.add_argument("--format", choices=["table", "octodns", "bind", "json"], default="table")

    p = add("explain", "SPF lookup tree, DMARC alignment per sender, DMARC stage")
    p.add_argument("domain")
    _common(p)
    _evidence_flags(p)
    p.add_argument("--format", choices=["text", "markdown"], default="text")

    p = add("check", "compare live DNS with what the policy wants (drift)")
    p.add_argument("domain")
    _common(p)
    _dns_flags(p, "ask this server (e.g. the zone's primary); default: the system resolver")
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = add("init", "write a policy from the records a domain already publishes")
    p.add_argument("domain")
    _common(p)
    _dns_flags(p, "read live DNS from this server instead of the config's zone files")
    p.add_argument(
        "--selector",
        action="append",
        metavar="NAME",
        help="with --nameserver: a DKIM selector to look up (repeatable); DNS cannot list them",
    )
    p.add_argument(
        "--remove-from-zone",
        action="store_true",
        help="remove the hand-written values the policy now publishes from the zone's YAML "
        "file (atomically; everything else is kept byte for byte)",
    )
    p.add_argument("--stdout", action="store_true", help="print the policy, write nothing")

    p = add("coverage", "every zone of the config: policy or not, MX, SPF, DMARC, a suggestion")
    _common(p)
    p.add_argument("--format", choices=["text", "markdown"], default="text")

    p = add("schema", "print the JSON Schema of the policy format")
    p.add_argument("--output", "-o", metavar="FILE", help="write it to FILE instead")

    p = add("dkim", "DKIM key lifecycle: keygen, rotate, export")
    dsub = p.add_subparsers(dest="dkim_command", metavar="ACTION", parser_class=_Parser)
    dsub.required = True
    dp = _action(
        dsub, "keygen", "generate the missing keys of fixed selectors (never replaces a key)"
    )
    dp.add_argument("domain", nargs="?", help="only this domain's policy")
    _common(dp)
    dp = _action(
        dsub,
        "rotate",
        "apply due rotation steps (publish, activate, retire, revoke); writes the state",
        "apply due rotation steps (publish, activate, retire, revoke); writes the "
        "state file, which you commit",
    )
    dp.add_argument("domain", nargs="?", help="only this domain's policy")
    _common(dp)
    dp.add_argument("--dry-run", action="store_true", help="show what is due, write nothing")
    dp.add_argument("--now", metavar="ISO-TIME", help="judge what is due at this time")
    _dns_flags(
        dp,
        "before activating a key, ask this server (e.g. the zone's primary) that it serves "
        "that exact key; default: the system resolver",
    )
    dp.add_argument(
        "--assume-published",
        action="store_true",
        help="activate due keys without asking DNS (air-gapped setups: you have checked "
        "that every new selector is published)",
    )
    dp = _action(
        dsub,
        "export",
        "signer config for the active keys (OpenDKIM KeyTable/SigningTable, Rspamd)",
    )
    dp.add_argument("domain", nargs="?", help="only this domain's policy")
    _common(dp)
    dp.add_argument(
        "--format",
        choices=["opendkim", "rspamd", "all"],
        default="opendkim",
        help="opendkim: KeyTable + SigningTable; rspamd: dkim_signing.conf (every active "
        "selector of each domain); all: both (default: opendkim)",
    )
    dp.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        help="write the chosen format's files into DIR (key paths in them are absolute)",
    )

    p = add("mta-sts", "MTA-STS policy files for the web server")
    msub = p.add_subparsers(dest="mta_sts_command", metavar="ACTION", parser_class=_Parser)
    msub.required = True
    mp = _action(
        msub,
        "policy",
        "print a domain's policy file, or write every domain's into a folder",
        "print a domain's mta-sts.txt, or write <DIR>/<domain>/.well-known/"
        "mta-sts.txt for every domain (the document root of https://mta-sts.<domain>/)",
    )
    mp.add_argument("domain", nargs="?")
    _common(mp)
    mp.add_argument("--output", "-o", metavar="DIR", help="write the files under DIR")

    # `lock refresh`: the lock holds SPF includes and the keys at delegated DKIM
    # targets; `spf refresh`, its first name, still works.
    p = add("lock", "the lock file: refresh the third-party records", aliases=["spf"])
    ssub = p.add_subparsers(dest="spf_command", metavar="ACTION", parser_class=_Parser)
    ssub.required = True
    sp = _action(
        ssub,
        "refresh",
        "resolve live the third-party records the policies depend on (SPF includes, "
        "the keys at delegated DKIM targets) and update the lock file",
    )
    _common(sp)
    _dns_flags(
        sp, "ask this resolver; default: the system resolver (this command needs network)", 30.0
    )
    sp.add_argument(
        "--accept-gone",
        action="store_true",
        help="record names that answered before (an SPF include, the key at a delegated DKIM "
        "target) and now answer NXDOMAIN, nothing, or not that record (default: keep their "
        "old answers and fail, as filtering DNS answers like this)",
    )
    sp.add_argument(
        "--accept-widening",
        action="store_true",
        help="write the lock even where a flattened include now authorises far more addresses",
    )
    sp.add_argument(
        "--rebuild",
        action="store_true",
        help="replace a lock file that cannot be read (cut short, not UTF-8, not JSON) "
        "with what DNS answers now",
    )
    _reports_parser(add)
    if command is not None and not built:
        return build_parser()
    return parser


def _reports_parser(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """`reports ingest|suggest|html` (cli/reports.py runs them)."""
    p = add("reports", "DMARC and SMTP TLS reports: ingest, suggest policy changes, HTML page")
    p.description = "DMARC aggregate and SMTP TLS reports as evidence for the policy"
    rsub = p.add_subparsers(dest="reports_command", metavar="ACTION", parser_class=_Parser)
    rsub.required = True

    def db_flags(rp: argparse.ArgumentParser) -> None:
        rp.add_argument(
            "--db",
            metavar="FILE",
            help="the evidence database (default: the processor's reports.db in --config)",
        )

    rp = _action(
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
    _dns_flags(rp, "ask this resolver for PTR names; default: the system resolver")
    rp.add_argument(
        "--jobs",
        "-j",
        type=int,
        metavar="N",
        help="read the files in N worker processes (default: one per idle CPU when there "
        "are many files); the result is the same, in the same order",
    )
    rp.add_argument("--quiet", "-q", action="store_true", help="print the summary only")

    rp = _action(
        rsub,
        "suggest",
        "print the policy change the evidence calls for, as a diff for a pull request",
        "print the policy change the evidence calls for as a unified diff of the policy "
        "files: declare a recognised undeclared source with its catalog provider, drop an "
        "SPF include no source used, advance the DMARC stage, add np=reject",
    )
    rp.add_argument("domain", nargs="*", help="only these domains (default: every policy)")
    _common(rp)
    db_flags(rp)
    rp.add_argument("--days", type=int, metavar="N", help="window (default: reports.days or 30)")
    rp.add_argument("--format", choices=["text", "markdown"], default="text")

    rp = _action(
        rsub,
        "html",
        "write a static HTML page of the evidence (no server, no external assets)",
    )
    rp.add_argument("domain", nargs="*", help="only these domains (default: every policy)")
    rp.add_argument("--output", "-o", metavar="DIR", required=True, help="write DIR/index.html")
    _common(rp)
    db_flags(rp)
    rp.add_argument("--days", type=int, metavar="N", help="window (default: reports.days or 30)")


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    first = given[0] if given else ""
    parser = build_parser(None if first.startswith("-") or not first else first)
    args = parser.parse_args(given)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("octodns-mailauth: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK  # `... | head`
    except PolicyError as e:
        # Errors with file and line (a broken DKIM state file, say): policy errors.
        for finding in e.findings:
            print(finding.format())
        return EXIT_POLICY
    except (UsageError, MailAuthError, OSError, KeyUnavailable) as e:  # no traceback for users
        print(f"octodns-mailauth: error: {e}", file=sys.stderr)
        return EXIT_USAGE


# The module of each command whose name differs; only the command that runs is
# imported (see the docstring).
_MODULES = {"mta-sts": "mtasts", "lock": "spf"}


def _dispatch(args: argparse.Namespace) -> int:
    module = importlib.import_module(f".{_MODULES.get(args.command, args.command)}", __name__)
    return module.run(args)  # type: ignore[no-any-return]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

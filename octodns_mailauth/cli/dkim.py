"""`dkim keygen|rotate|export`: thin wrappers over dkim/rotate.py and
dkim/export.py.  Private keys stay in the keystore; nothing here prints them."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Any

from ..dkim import export
from ..dkim.keys import DkimKeyError
from ..dkim.keystore import Keystore, KeystoreError
from ..dkim.rotate import advance_rotation, keygen
from ..dkim.statefile import default_path
from ..errors import PolicyError
from ..records.dkim import key_name, parse_key_record
from .exitcodes import EXIT_OK, EXIT_POLICY
from .livedns import DnsUnavailable, LiveDns
from .settings import UsageError, resolve
from .workspace import Workspace, load


def _keystore(ws: Workspace, *, create: bool) -> Any:
    root = ws.settings.keys
    if root is None:
        raise UsageError("no DKIM keystore: set `keys:` in the processor config or give --keys")
    if not create and not root.is_dir():
        raise UsageError(
            f"DKIM keystore {root} does not exist; run `octodns-mailauth dkim keygen`"
        )
    try:
        return Keystore(root, passphrase_env=ws.settings.passphrase_env, create=create)
    except KeystoreError as e:
        raise UsageError(f"DKIM keystore: {e}") from None


def _policies(ws: Workspace, domain: str | None) -> list[Any]:
    ws.require_loaded()
    return [ws.policy_for(domain)] if domain else list(ws.policies)


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--now {text}: expected an ISO date, e.g. 2026-12-01T00:00:00Z"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def run(args: argparse.Namespace) -> int:
    ws = load(resolve(args))
    try:
        if args.dkim_command == "keygen":
            return _keygen(ws, args)
        if args.dkim_command == "rotate":
            return _rotate(ws, args)
        return _export(ws, args)
    except PolicyError as e:
        for f in e.findings:
            print(f.format())
        return EXIT_POLICY


def _keygen(ws: Workspace, args: argparse.Namespace) -> int:
    policies = _policies(ws, args.domain)
    for domain, selector, created in keygen(policies, _keystore(ws, create=True)):
        state = "generated" if created else "exists"
        print(f"{domain}: selector {selector}: {state}")
    return EXIT_OK


def _rotate(ws: Workspace, args: argparse.Namespace) -> int:
    policies = _policies(ws, args.domain)
    now = _now(args.now)
    report = advance_rotation(
        policies,
        ws.settings.dkim_state or default_path(ws.policies_dir()),
        _keystore(ws, create=not args.dry_run),
        now,
        dry_run=args.dry_run,
        confirm=None if args.assume_published else _served_by(args),
    )
    for line in report.lines():
        print(line)
    if args.dry_run:
        print("dry run: nothing written", file=sys.stderr)
    elif report.written:
        print(f"wrote {report.state_path}; commit it, then run octodns-sync", file=sys.stderr)
    return EXIT_POLICY if report.held else EXIT_OK


def _served_by(args: argparse.Namespace) -> Any:
    """confirm() for advance_rotation: does DNS (as `check` asks it) serve this key?"""
    if args.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    servers: list[LiveDns] = []  # made at the first activation: most runs ask nothing

    def confirm(domain: str, selector: str, algorithm: str, p: str) -> str | None:
        name = key_name(selector, domain)
        if not servers:
            servers.append(LiveDns(args.nameserver, args.timeout))
        live = servers[0]
        try:
            values, _alias = live.query(name, "TXT")
        except DnsUnavailable as e:
            return f"cannot confirm it is published ({e})"
        for value in values:
            try:
                record = parse_key_record(value)
            except DkimKeyError:
                continue
            if record.algorithm == algorithm and record.p == p:
                return None
        seen = "no DKIM key" if not values else "a different key"
        return f"{live.where} serves {seen} at {name}"

    return confirm


def _export(ws: Workspace, args: argparse.Namespace) -> int:
    policies = _policies(ws, args.domain)
    keys = export.active_signing_keys(policies, ws.inputs.dkim_state, _keystore(ws, create=False))
    formats = export.FORMATS if args.format == "all" else (args.format,)
    if args.output:
        files, warnings = export.write_exports(keys, args.output, formats)
        for path in files:
            print(f"wrote {path}")
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return EXIT_OK
    if "opendkim" in formats:
        print("# KeyTable")
        print(export.render_opendkim_keytable(keys), end="")
        print("# SigningTable")
        print(export.render_opendkim_signingtable(keys), end="")
    if "rspamd" in formats:
        print(export.render_rspamd_signing(keys), end="")
    return EXIT_OK

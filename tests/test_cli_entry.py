"""The installed `octodns-mailauth` script in a subprocess: the entry point works
and a user error never shows a traceback.  Every other CLI test runs `cli.main`
in-process (tests/cli_run.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from octodns_mailauth import __version__
from octodns_mailauth.cli import build_parser

BIN = Path(sys.executable).parent / "octodns-mailauth"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def test_entry_point_runs() -> None:
    proc = run("--version")
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "octodns_mailauth.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "spf" in proc.stdout


def test_user_errors_show_no_traceback(tmp_path: Path) -> None:
    bad_lock = tmp_path / "spf-lock.json"
    bad_lock.write_bytes(b'{"version": 1, "answers": {"\xff')  # cut short, not UTF-8
    (tmp_path / "example.com.yaml").write_text("senders: []\n")
    cases = [
        (("validate", "--config", str(tmp_path / "missing.yaml")), "missing.yaml"),
        (("records", "example.com", "--no-such-flag"), "--no-such-flag"),
        (("validate", "--policies", str(tmp_path), "--spf-lock", str(bad_lock)), "--rebuild"),
    ]
    for args, named in cases:
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
        assert named in proc.stderr, (args, proc.stderr)
    assert len(cases) == 3


def test_a_command_alone_parses_as_the_whole_parser_does() -> None:
    """main builds only the command that runs (startup time); what it parses,
    and what an unknown command gets, is the whole parser's."""
    lines = [
        ["validate", "zones/mail", "--config", "c.yaml", "--format", "json", "-q"],
        ["spf", "refresh", "--config", "c.yaml", "--accept-gone", "--timeout", "3"],
        ["reports", "ingest", "a.xml", "--db", "e.db", "--reverse-dns"],
        ["dkim", "rotate", "example.com", "--dry-run", "--policies", "p"],
    ]
    for argv in lines:
        assert build_parser(argv[0]).parse_args(argv) == build_parser().parse_args(argv)
    parsers = [action for action in build_parser("validate")._actions if action.dest == "command"]
    assert list(parsers[0].choices) == ["validate"]  # really built alone
    assert build_parser("no-such-command").format_help() == build_parser().format_help()

"""The installed `octodns-mailauth` script in a subprocess: the entry point works
and a user error never shows a traceback.  Every other CLI test runs `cli.main`
in-process (tests/cli_run.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from octodns_mailauth import __version__

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

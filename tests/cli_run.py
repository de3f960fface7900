"""Run `octodns-mailauth` in-process through `cli.main`, with captured output.

The one helper every CLI test uses: as the entry point would, minus the
interpreter start-up.  A few tests (test_cli_entry.py) still run the installed
script in a subprocess, for the entry point itself and the no-traceback rule."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from octodns_mailauth.cli import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str) -> Result:
    """`octodns-mailauth ARGS` in this process.  An exception escaping `main` would be
    a traceback for the user: it propagates and fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse: --help, --version, bad flags
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    result = Result(code, out.getvalue(), err.getvalue())
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    # Private key material never reaches the terminal.
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    return result

"""The CLI's exit codes and the parser that applies them, in their own module so
every command can import them without importing the dispatcher (`cli/__init__`),
which imports the commands."""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_POLICY = 1
EXIT_USAGE = 2

EPILOG = """\
exit codes:
  0  no errors (warnings may have been printed)
  1  policy errors; for `check`, published DNS differs from the policy
  2  usage or environment error: bad flags, a missing file or folder, an unreadable
     config or lock file, DNS that does not answer
"""


class Parser(argparse.ArgumentParser):
    """argparse with our exit code for bad flags and a pointer to --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own exit status is 2 too; say what to run for help.
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

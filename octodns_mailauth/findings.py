"""Findings: what the compile step (and every check) reports besides records.

A finding is data, not an exception, so the processor, the CLI and live checks
can each present the same result their own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from .redact import redact


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


# A NamedTuple, not a frozen dataclass: every `validate` defines it, and a dataclass
# costs four times as much to define (it compiles its methods from source).
class Location(NamedTuple):
    """Where in a policy file a finding points (1-based line)."""

    file: str
    line: int | None = None
    key_path: str | None = None  # e.g. "senders[2].dkim.selector"

    def __str__(self) -> str:
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
        return out


@dataclass(frozen=True)
class Finding:
    severity: Severity
    message: str
    location: Location | None = None
    hint: str | None = None  # how to fix it
    rfc: str | None = None  # e.g. "RFC 7208 §4.6.4"
    code: str | None = None  # stable machine id, e.g. "spf-too-many-lookups"
    # A cause it shares with every policy of the run (dns/lockfile.NO_LOCK): the
    # processor says that once per run, not once per policy (processor.py).
    cause: str | None = None

    def format(self) -> str:
        """`file:line: severity: message (key path) [RFC]; hint` as editors read it."""
        # Kept once made (not a field: `replace` makes a new finding without it, and
        # pickling keeps it): a worker process formats what this process logs.
        text: str | None = self.__dict__.get("_formatted")
        if text is None:
            head = f"{self.location}: " if self.location else ""
            text = f"{head}{self.severity.value}: {self.detail()}"
            object.__setattr__(self, "_formatted", text)
        return text

    def detail(self) -> str:
        """The message with its key path, RFC and hint, without file and severity.

        Redacted as a whole: whatever the message quotes from the policy (a name,
        a URI, a key path) may be a pasted private key, and findings reach CI logs."""
        text = self.message
        if self.location and self.location.key_path:
            text += f" (at {self.location.key_path})"
        if self.rfc:
            text += f" [{self.rfc}]"
        if self.hint:
            text += f"; hint: {self.hint}"
        return redact(text)

    def __str__(self) -> str:
        return self.format()

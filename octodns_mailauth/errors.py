"""Exceptions that reach users.  Their text is the whole message: octoDNS prints
a processor's exception as is, so it must say file, line, key path and fix."""

from __future__ import annotations

from collections.abc import Iterable

from octodns.processor.base import ProcessorException

from .findings import Finding, Location, Severity


class MailAuthError(Exception):
    """Base class for every error this package raises on purpose."""


class KeyUnavailable(Exception):
    """The public half of a DKIM key cannot be had; the text says why and what to do.
    (Not a MailAuthError: callers tell it apart, e.g. the CLI as an environment error.)"""


class PolicyError(MailAuthError):
    """One or more error findings in policy files."""

    def __init__(self, findings: Iterable[Finding], headline: str | None = None) -> None:
        self.findings = list(findings)
        lines = [f.format() for f in self.findings]
        head = headline or (
            "mail policy is invalid" if len(lines) == 1 else f"{len(lines)} mail policy errors"
        )
        super().__init__(head + ":\n  " + "\n  ".join(lines))

    @classmethod
    def one(
        cls,
        message: str,
        where: Location | None = None,
        hint: str | None = None,
        *,
        code: str | None = None,
    ) -> PolicyError:
        """A single error finding."""
        return cls([Finding(Severity.ERROR, message, where, hint, code=code)])


class MailAuthProcessorError(ProcessorException):
    """Raised inside octoDNS for any policy, keystore, merge or plan problem; the
    text is the message.  Here, not in processor.py, so the plan guard can raise
    it without importing the processor (no import cycle)."""

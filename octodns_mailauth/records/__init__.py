"""One module per record kind: its value recognised, parsed and built.

`owns(text)` in each module is the check its parser makes, so "is this value
DMARC?" has one answer everywhere: the processor's merge, the zone checks and
the CLI.  A TXT value of no kind we manage at a name we publish (a
site-verification token, say) belongs to someone else and is kept.
"""

from __future__ import annotations

from collections.abc import Callable

from . import bimi, dkim, dmarc, mtasts, spf, tlsrpt

OWNS: dict[str, Callable[[str], bool]] = {
    "spf": spf.owns,
    "dmarc": dmarc.owns,
    "dkim": dkim.owns,
    "tlsrpt": tlsrpt.owns,
    "mta-sts": mtasts.owns,
    "bimi": bimi.owns,
}


def txt_kind_matches(kind: str, value: str) -> bool:
    """True when `value` is a record of `kind` ("spf", "dmarc", ...)."""
    owns = OWNS.get(kind)
    return bool(owns and owns(value))


def kind_of(value: str) -> str | None:
    """The kind a TXT value announces by its version tag (DKIM announces none
    reliably: it is known by its name, not its text)."""
    return next((k for k, owns in OWNS.items() if k != "dkim" and owns(value)), None)

"""octodns-mailauth: mail authentication policy (SPF, DKIM, DMARC) as code for octoDNS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .processor import MailAuthProcessor


def __getattr__(name: str) -> Any:
    # Lazy, so `octodns-mailauth validate` (pre-commit) does not import octoDNS.
    if name == "MailAuthProcessor":
        from .processor import MailAuthProcessor

        return MailAuthProcessor
    raise AttributeError(name)


__all__ = ["MailAuthProcessor", "__version__"]

"""MX (RFC 5321 §5.1, RFC 7505): values as octoDNS writes them, `10 mx.example.com.`."""

from __future__ import annotations

from collections.abc import Iterable

from ..names import normalize

NULL = "0 ."  # RFC 7505 §3: the domain accepts no mail


def exchanges(values: Iterable[str]) -> list[str]:
    """'10 mx1.example.com.' -> 'mx1.example.com'; a null MX ('0 .') has no host."""
    out = []
    for value in values:
        parts = value.split()
        exchange = parts[-1] if parts else ""
        if exchange not in ("", "."):
            out.append(normalize(exchange))
    return out

"""TLS-RPT (RFC 8460 §3): the `_smtp._tls` TXT value."""

from __future__ import annotations

import re
from collections.abc import Iterable

# tlsrpt-version = %s"v=TLSRPTv1": case-sensitive.
_VERSION = re.compile(r"v=TLSRPTv1[ \t]*(?:;|\Z)")


def owns(text: str) -> bool:
    return _VERSION.match(text) is not None


def build(rua: Iterable[str]) -> str:
    return f"v=TLSRPTv1; rua={','.join(rua)}"

"""BIMI (draft-brand-indicators-for-message-identification): the
`<selector>._bimi` TXT value.  Logo checks: bimi.py."""

from __future__ import annotations

import re

# `v=BIMI1` first, exact.
_VERSION = re.compile(r"v=BIMI1[ \t]*(?:;|\Z)")
DECLINE = "v=BIMI1; l=; a=;"


def owns(text: str) -> bool:
    return _VERSION.match(text) is not None


def build(logo: str | None, authority: str | None, *, decline: bool = False) -> str:
    if decline:
        return DECLINE
    value = f"v=BIMI1; l={logo}"
    if authority:
        value += f"; a={authority}"
    return value

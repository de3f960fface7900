"""Policy settings for SPF (RFC 7208)."""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from .base import _Strict


class SpfAll(str, Enum):
    """The qualifier on the closing `all` (RFC 7208 §5.1)."""

    fail = "fail"  # -all
    softfail = "softfail"  # ~all
    neutral = "neutral"  # ?all


class SpfPolicy(_Strict):
    all: SpfAll = Field(
        SpfAll.fail, description="what happens to unlisted senders: fail (-all), softfail (~all)"
    )
    takeover: bool = Field(
        False,
        description="replace a hand-written v=spf1 record already in the zone instead of "
        "refusing to run",
    )

"""Policy settings for SPF (RFC 7208)."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, StrictBool, StrictInt, field_validator

from .base import _Strict, check_hostname, empty_dict


class SpfAll(str, Enum):
    """The qualifier on the closing `all` (RFC 7208 §5.1)."""

    fail = "fail"  # -all
    softfail = "softfail"  # ~all
    neutral = "neutral"  # ?all


class SpfFlatten(str, Enum):
    """When includes are replaced by the addresses they resolve to (from the lock)."""

    never = "never"  # only senders that say `flatten: true`
    auto = "auto"  # also as many includes as it takes to stay within 10 lookups
    always = "always"  # every include that can be flattened


class SpfCeiling(_Strict):
    """How many addresses a record may let pass before a warning, as the size of
    one network of this prefix length (the union of every range counts)."""

    ip4: StrictInt = Field(8, ge=1, le=32, description="warn past one /N of IPv4 (default /8)")
    ip6: StrictInt = Field(24, ge=1, le=128, description="warn past one /N of IPv6 (default /24)")


class SpfPolicy(_Strict):
    all: SpfAll = Field(
        SpfAll.fail, description="what happens to unlisted senders: fail (-all), softfail (~all)"
    )
    takeover: StrictBool = Field(
        False,
        description="replace a hand-written v=spf1 record already in the zone instead of "
        "refusing to run",
    )
    flatten: SpfFlatten = Field(
        SpfFlatten.never,
        description="never: flatten only senders with `flatten: true`; auto: also flatten the "
        "costliest includes until the record needs at most 10 DNS lookups; always: flatten "
        "every include.  Addresses come from the SPF lock file (spf-lock.json)",
    )
    names: dict[str, list[str]] = Field(
        default_factory=empty_dict,
        description="SPF records at other names (return-path / bounce hosts): a name relative "
        "to the domain (or absolute under it) -> the senders whose terms it lists",
    )
    address_ceiling: SpfCeiling = Field(
        default_factory=empty_dict,  # validated into the defaults (see Policy.spf)
        validate_default=True,
        description="warn when the addresses the SPF record lets pass (written, flattened "
        "and included, all together) add up to more than one /ip4 or /ip6 network; all of "
        "IPv4 or IPv6 is always an error",
    )
    lock_max_age_days: StrictInt = Field(
        30,
        ge=1,
        description="warn when the SPF lock file's answers are older than this many days",
    )

    @field_validator("flatten", mode="before")
    @classmethod
    def _flatten(cls, value: object) -> object:
        # `flatten: true` / `false` read as always / never.
        if isinstance(value, bool):
            return SpfFlatten.always if value else SpfFlatten.never
        return value

    @field_validator("names")
    @classmethod
    def _names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, senders in value.items():
            if name.strip() in ("", "@"):
                raise ValueError("spf.names is for names other than the domain itself")
            # A relative name (`bounce`) is checked as a label under a placeholder.
            checked = check_hostname(name if "." in name else f"{name}.example", "SPF name")
            out[checked if "." in name else name.lower()] = list(senders)
        return out

"""The mail policy: one YAML file per domain, validated by these pydantic models.

Field names read as a mail admin says them; the DNS tag each one becomes is in
its description (which also feeds the JSON Schema editors use).  Each
standard's settings live in a module of their own (spf.py, dkim.py, dmarc.py).
"""

from __future__ import annotations

import difflib
import ipaddress
from typing import Any

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..acknowledge import AckError, parse_ack
from ..names import check_name
from ..redact import redact, shown
from .base import (
    Strings,
    _Strict,
    check_hostname,
    check_text,
    empty_dict,
    empty_list,
    refuse_unknown_key,
)
from .dkim import DkimKey
from .dmarc import DmarcPolicySettings
from .spf import SpfPolicy
from .transport import BimiSettings, MtaStsSettings, TlsRptSettings

# Ranges wider than these (a /7 is 1/128 of IPv4) are no list of servers.
_WIDEST_PREFIX = {4: 8, 6: 16}


def _share(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return "every one" if network.prefixlen == 0 else f"1/{2**network.prefixlen}"


class Sender(_Strict):
    """Something that sends mail as this domain: a catalog provider, our own
    servers (ip4/ip6/a/mx), or both.  Provider parameters (`tenant`, ...) sit
    beside the other keys and are checked against the catalog entry."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="a short name for this sender, unique in the policy")
    provider: str | None = Field(
        None, description="a sender catalog entry, e.g. microsoft365, google, sendgrid"
    )
    ip4: list[ipaddress.IPv4Network] = Field(
        default_factory=empty_list, description="IPv4 addresses or CIDR ranges (SPF ip4)"
    )
    ip6: list[ipaddress.IPv6Network] = Field(
        default_factory=empty_list, description="IPv6 addresses or CIDR ranges (SPF ip6)"
    )
    a: StrictBool | list[str] = Field(
        False, description="true for SPF `a` of the domain, or host names for `a:host`"
    )
    mx: StrictBool | list[str] = Field(
        False, description="true for SPF `mx` of the domain, or names for `mx:name`"
    )
    include: Strings = Field(default_factory=empty_list, description="extra SPF includes")
    dkim: list[DkimKey] = Field(
        default_factory=empty_list, description="DKIM keys we generate and hold for this sender"
    )
    return_path: str | None = Field(
        None,
        description="the envelope MAIL FROM (return-path) domain this sender uses; own "
        "servers default to the policy domain, catalog providers know theirs",
    )
    flatten: StrictBool = Field(
        False,
        description="replace this sender's SPF includes by the addresses they resolve to "
        "(from the SPF lock file)",
    )
    unaligned_ok: str | None = Field(
        None,
        description="acknowledge that this sender cannot align under DMARC, saying why; "
        "lets the policy move to quarantine or reject anyway",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a sender needs a non-empty name")
        return check_text(value, "the sender's name")

    @field_validator("ip4", "ip6", mode="before")
    @classmethod
    def _networks(cls, value: Any, info: ValidationInfo) -> Any:
        # strict=True: `198.51.100.1/28` is a typo for a network we refuse below
        # with a clear message rather than silently widening.
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return value
        version = 4 if info.field_name == "ip4" else 6
        out = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise ValueError(
                    f"{shown(item)} is not an IP address or CIDR range; write e.g. "
                    + ("203.0.113.5 or 198.51.100.0/28" if version == 4 else "2001:db8::25")
                )
            try:
                network = ipaddress.ip_network(str(item), strict=True)
            except ValueError as e:
                raise ValueError(
                    f"{shown(item)} is not an IP address or CIDR range ({redact(str(e))}); "
                    "write e.g. 203.0.113.5 or 198.51.100.0/28 with the host bits zero"
                ) from None
            if network.version != version:
                other = "ip6" if version == 4 else "ip4"
                raise ValueError(
                    f"{item} is an IPv{network.version} "
                    f"{'address' if network.num_addresses == 1 else 'range'}, not "
                    f"IPv{version}: list it under {other}: instead"
                )
            if network.prefixlen < _WIDEST_PREFIX[version]:
                raise ValueError(
                    f"{item} covers {_share(network)} of the IPv{version} addresses: an SPF "
                    "record listing it lets nearly anyone pass, like +all (RFC 7208 §5.1); "
                    "list the addresses your servers send from, e.g. "
                    + ("203.0.113.5 or 198.51.100.0/28" if version == 4 else "2001:db8:1::/48")
                )
            out.append(network)
        return out

    @field_validator("unaligned_ok", mode="before")
    @classmethod
    def _unaligned_reason(cls, value: Any) -> Any:
        # `unaligned_ok: true` would acknowledge nothing: the reason is the point
        # (the next reader learns why enforcement is safe for this sender).
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ValueError(
                "unaligned_ok takes the reason this sender cannot align, as text, not "
                f"{shown(value)}"
            )
        return check_text(value.strip(), "unaligned_ok")

    @field_validator("include")
    @classmethod
    def _include_names(cls, value: list[str]) -> list[str]:
        return [check_hostname(v, "SPF include target") for v in value]

    @field_validator("return_path")
    @classmethod
    def _return_path(cls, value: str | None) -> str | None:
        return None if value is None else check_hostname(value, "return-path domain")

    @field_validator("a", "mx")
    @classmethod
    def _hosts(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list):
            return [check_hostname(v, "host name") for v in value]
        return value

    @field_validator("dkim", mode="before")
    @classmethod
    def _dkim_list(cls, value: Any) -> Any:
        # `dkim: {selector: x}` for one key, a list for dual signing.
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _own_keys(self) -> Sender:
        # Extra keys are provider parameters, checked against the catalog entry;
        # a sender without a provider has none, so `ipv4:` is a typo, not a
        # parameter (silently dropping it would drop the address from SPF).
        if self.provider is None and self.model_extra:
            # The one that looks like a sender key is the typo (`providr:` beside `tenant:`).
            extra = list(self.model_extra)
            close = [k for k in extra if difflib.get_close_matches(k, type(self).model_fields)]
            refuse_unknown_key(close or extra, ())
        return self

    @property
    def params(self) -> dict[str, Any]:
        """Provider parameters: the keys beyond the declared fields."""
        return dict(self.model_extra or {})


class Policy(_Strict):
    """The mail policy of one domain."""

    domain: str | None = Field(
        None, description="the domain this policy is for; defaults to the file name"
    )
    ttl: StrictInt = Field(3600, ge=60, le=604800, description="TTL of the records we publish")
    senders: list[Sender] = Field(default_factory=empty_list)
    # {} validated by this model's own schema: calling SpfPolicy() instead would build a
    # second validator for SpfPolicy alone, on every run whose policy has no `spf:`.
    spf: SpfPolicy = Field(default_factory=empty_dict, validate_default=True)
    dmarc: DmarcPolicySettings | None = None
    mta_sts: MtaStsSettings | None = Field(None, description="MTA-STS policy (RFC 8461)")
    tls_rpt: TlsRptSettings | None = Field(None, description="TLS reporting (RFC 8460)")
    bimi: BimiSettings | None = Field(None, description="BIMI logo record")
    parked: StrictBool = Field(
        False,
        description="the domain sends and receives no mail: publish null MX, "
        "v=spf1 -all, DMARC reject and the M3AAWG wildcard records",
    )
    null_mx: StrictBool = Field(
        False, description="the domain receives no mail: publish MX 0 . (RFC 7505)"
    )
    acknowledge: list[str] = Field(
        default_factory=empty_list,
        description="destructive changes this policy makes on purpose, each `<change> "
        "<name>` (e.g. `dkim-delete old._domainkey`, `dmarc-weaken _dmarc`); the plan guard "
        'refuses them otherwise (README "Safety")',
    )

    @field_validator("acknowledge")
    @classmethod
    def _acknowledge(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                parse_ack(entry, "policy.domain")
            except AckError as e:
                raise ValueError(str(e)) from None
        return [" ".join(entry.split()) for entry in value]

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "domain")

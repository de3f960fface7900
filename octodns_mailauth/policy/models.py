"""The mail policy: one YAML file per domain, validated by these pydantic models.

Field names read as a mail admin says them; the DNS tag each one becomes is in
its description (which also feeds the JSON Schema editors use).
"""

from __future__ import annotations

import ipaddress
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ..names import is_hostname, is_selector, normalize


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpfAll(str, Enum):
    """The qualifier on the closing `all` (RFC 7208 §5.1)."""

    fail = "fail"  # -all
    softfail = "softfail"  # ~all
    neutral = "neutral"  # ?all


class DmarcPolicy(str, Enum):
    none = "none"
    quarantine = "quarantine"
    reject = "reject"


class Alignment(str, Enum):
    relaxed = "relaxed"  # r: organizational domains match (RFC 7489 §3.1)
    strict = "strict"  # s: exact FQDN match


Hostname = Annotated[str, Field(description="A fully qualified host name")]


def _check_hostname(value: str, what: str) -> str:
    if not is_hostname(value, allow_service_labels=True):
        raise ValueError(
            f"{value!r} is not a valid {what}: expected a fully qualified domain name "
            "such as spf.example.net"
        )
    return normalize(value)


class DkimKey(_Strict):
    """A DKIM key we generate and hold: published at `<selector>._domainkey`."""

    selector: str = Field(description="DKIM selector (one or more DNS labels), e.g. 'relay2026a'")
    algorithm: Literal["ed25519", "rsa"] = Field(
        "rsa", description="ed25519 (RFC 8463) or rsa (RFC 8301)"
    )
    bits: int = Field(2048, description="RSA key size: 2048 (default) up to 4096")
    testing: bool = Field(False, description="publish t=y while testing (RFC 6376 §3.6.1)")
    public_key: str | None = Field(
        None,
        description="the p= value, when the private key is held elsewhere; "
        "checked against the keystore when both exist",
    )

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        if not is_selector(value):
            raise ValueError(
                f"{value!r} is not a valid DKIM selector: use DNS labels of letters, digits "
                "and hyphens, not starting or ending with a hyphen (RFC 6376 §3.1)"
            )
        return value.lower()

    @model_validator(mode="after")
    def _bits(self) -> DkimKey:
        if self.algorithm == "rsa" and not 2048 <= self.bits <= 4096:
            raise ValueError(
                f"RSA key size {self.bits} is not allowed: use 2048 (default) to 4096 bits "
                "(RFC 8301 §3.2 makes 1024 the floor; receivers increasingly refuse it)"
            )
        return self


class Sender(BaseModel):
    """Something that sends mail as this domain: a catalog provider, our own
    servers (ip4/ip6/a/mx), or both.  Provider parameters (`tenant`, ...) sit
    beside the other keys and are checked against the catalog entry."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(description="a short name for this sender, unique in the policy")
    provider: str | None = Field(
        None, description="a sender catalog entry, e.g. microsoft365, google, sendgrid"
    )
    ip4: list[ipaddress.IPv4Network] = Field(
        default_factory=list, description="IPv4 addresses or CIDR ranges (SPF ip4)"
    )
    ip6: list[ipaddress.IPv6Network] = Field(
        default_factory=list, description="IPv6 addresses or CIDR ranges (SPF ip6)"
    )
    a: bool | list[str] = Field(
        False, description="true for SPF `a` of the domain, or host names for `a:host`"
    )
    mx: bool | list[str] = Field(
        False, description="true for SPF `mx` of the domain, or names for `mx:name`"
    )
    include: list[str] = Field(default_factory=list, description="extra SPF includes")
    dkim: list[DkimKey] = Field(
        default_factory=list, description="DKIM keys we generate and hold for this sender"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a sender needs a non-empty name")
        return value

    @field_validator("ip4", "ip6", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        # strict=False: `198.51.100.1/28` is a typo for a network we refuse below
        # with a clear message rather than silently widening.
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            try:
                out.append(ipaddress.ip_network(str(item), strict=True))
            except ValueError as e:
                raise ValueError(
                    f"{item!r} is not an IP address or CIDR range ({e}); write e.g. "
                    "203.0.113.5 or 198.51.100.0/28 with the host bits zero"
                ) from None
        return out

    @field_validator("include", mode="before")
    @classmethod
    def _includes(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        return value

    @field_validator("include")
    @classmethod
    def _include_names(cls, value: list[str]) -> list[str]:
        return [_check_hostname(v, "SPF include target") for v in value]

    @field_validator("a", "mx")
    @classmethod
    def _hosts(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list):
            return [_check_hostname(v, "host name") for v in value]
        return value

    @field_validator("dkim", mode="before")
    @classmethod
    def _dkim_list(cls, value: Any) -> Any:
        # `dkim: {selector: x}` for one key, a list for dual signing.
        return [value] if isinstance(value, dict) else value

    @property
    def params(self) -> dict[str, Any]:
        """Provider parameters: the keys beyond the declared fields."""
        return dict(self.model_extra or {})


class SpfPolicy(_Strict):
    all: SpfAll = Field(
        SpfAll.fail, description="what happens to unlisted senders: fail (-all), softfail (~all)"
    )
    takeover: bool = Field(
        False,
        description="replace a hand-written v=spf1 record already in the zone instead of "
        "refusing to run",
    )


class DmarcPolicySettings(_Strict):
    policy: DmarcPolicy = Field(description="p=: none, quarantine or reject")
    subdomain_policy: DmarcPolicy | None = Field(
        None, description="sp=: policy for subdomains (defaults to policy)"
    )
    rua: list[str] = Field(
        default_factory=list, description="rua=: aggregate report URIs (mailto:)"
    )
    dkim_alignment: Alignment = Field(Alignment.relaxed, description="adkim=")
    spf_alignment: Alignment = Field(Alignment.relaxed, description="aspf=")
    takeover: bool = Field(
        False, description="replace a hand-written v=DMARC1 record already in the zone"
    )

    @field_validator("rua", mode="before")
    @classmethod
    def _rua_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("rua")
    @classmethod
    def _rua(cls, value: list[str]) -> list[str]:
        for uri in value:
            if not uri.lower().startswith("mailto:") or "@" not in uri:
                raise ValueError(
                    f"{uri!r} is not a DMARC report address: write mailto:reports@example.com"
                )
            if any(c in uri for c in ";, \t") or not uri.isascii():
                raise ValueError(
                    f"{uri!r} contains a character that must be percent-encoded (RFC 7489 §6.4)"
                )
        return value


class Policy(_Strict):
    """The mail policy of one domain."""

    domain: str | None = Field(
        None, description="the domain this policy is for; defaults to the file name"
    )
    ttl: int = Field(3600, ge=60, le=604800, description="TTL of the records we publish")
    senders: list[Sender] = Field(default_factory=list)
    spf: SpfPolicy = Field(default_factory=SpfPolicy)
    dmarc: DmarcPolicySettings | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return None if value is None else _check_hostname(value, "domain")

"""Policy settings for DMARC (RFC 7489, RFC 9989)."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import Field, field_validator

from .base import _Strict


class DmarcPolicy(str, Enum):
    none = "none"
    quarantine = "quarantine"
    reject = "reject"


class Alignment(str, Enum):
    relaxed = "relaxed"  # r: organizational domains match (RFC 7489 §3.1)
    strict = "strict"  # s: exact FQDN match


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

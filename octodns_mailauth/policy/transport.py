"""Policy settings for MTA-STS (RFC 8461), TLS-RPT (RFC 8460) and BIMI.

Structure and syntax are checked here so a typo points at its line; the rules
that depend on the zone or on other settings (MX coverage, DMARC enforcement
for BIMI, parked domains) are checks in the compile steps.
"""

from __future__ import annotations

import ipaddress
import re
from enum import Enum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from ..names import InvalidName, check_name, check_selector, is_hostname, mailto_to_ascii
from .base import OneOrMany, Strings, _Strict, check_hostname, empty_list

MAX_AGE_LIMIT = 31557600  # RFC 8461 §3.2: at most one year

# Characters a report URI must percent-encode: `,` separates URIs, `;` fields,
# and `!` was the DMARC size suffix (RFC 8460 §3).
_URI_FORBIDDEN = re.compile(r"[,;!\s]")


def _refuse_unencoded(value: str, what: str, rfc: str) -> None:
    if not value.isascii() or _URI_FORBIDDEN.search(value):
        raise ValueError(
            f"{value!r} is not a valid {what}: spaces, commas, semicolons and '!' must be "
            f"percent-encoded ({rfc})"
        )


def check_https_url(value: str, what: str, rfc: str) -> str:
    """An absolute https URL with a host name, nothing that needs encoding."""
    _refuse_unencoded(value, what, rfc)
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
    except ValueError as e:
        raise ValueError(f"{value!r} is not a valid {what}: {e}") from None
    if parts.scheme.lower() != "https":
        raise ValueError(
            f"{value!r} is not a valid {what}: it must be an https:// URL ({rfc}); "
            "write e.g. https://reports.example.com/path"
        )
    if not (is_hostname(host) or _is_ip(host)) or parts.username or parts.password:
        raise ValueError(
            f"{value!r} is not a valid {what}: the URL needs a host name such as "
            "reports.example.com and no user name or password"
        )
    return value


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_mailto(value: str, what: str, rfc: str) -> str:
    """`mailto:local@domain` with a real domain and nothing unencoded."""
    value = mailto_to_ascii(value, what)
    address = value[len("mailto:") :].split("?", 1)[0]
    local, at, domain = address.rpartition("@")
    if not at or not local:
        raise ValueError(f"{value!r} is not a valid {what}: write mailto:tls-reports@example.com")
    try:
        check_name(domain, f"the domain of the {what}")
    except InvalidName as e:
        raise ValueError(f"{e}; write mailto:tls-reports@example.com") from None
    _refuse_unencoded(value, what, rfc)
    return value


# --- MTA-STS --------------------------------------------------------------------------------


class MtaStsMode(str, Enum):
    enforce = "enforce"  # senders refuse delivery without valid TLS to a listed MX
    testing = "testing"  # senders deliver anyway and report failures (TLS-RPT)
    none = "none"  # the policy is withdrawn; publish this before removing MTA-STS


class MtaStsHost(_Strict):
    """Where `https://mta-sts.<domain>/` is served: a CNAME to a hosting
    service, or the addresses of our own web server."""

    cname: str | None = Field(None, description="CNAME target for mta-sts.<domain>")
    ip4: Annotated[list[ipaddress.IPv4Address], OneOrMany] = Field(
        default_factory=empty_list, description="A records for mta-sts.<domain>"
    )
    ip6: Annotated[list[ipaddress.IPv6Address], OneOrMany] = Field(
        default_factory=empty_list, description="AAAA records for mta-sts.<domain>"
    )

    @field_validator("cname")
    @classmethod
    def _cname(cls, value: str | None) -> str | None:
        return None if value is None else check_hostname(value, "CNAME target")

    @model_validator(mode="after")
    def _one_kind(self) -> MtaStsHost:
        if self.cname and (self.ip4 or self.ip6):
            raise ValueError(
                "give either cname or ip4/ip6 for the mta-sts host, not both "
                "(a CNAME must stand alone, RFC 1034 §3.6.2)"
            )
        if not (self.cname or self.ip4 or self.ip6):
            raise ValueError("give cname, or ip4 and/or ip6, for the mta-sts host")
        return self


def check_mx_pattern(value: str) -> str:
    """A host name, or `*.` and a host name (RFC 8461 §3.2, §4.1)."""
    name = value[2:] if value.startswith("*.") else value
    try:
        name = check_name(name, "MTA-STS mx pattern")
    except InvalidName as e:
        raise ValueError(
            f"{e}; write a host name such as mx1.example.com, or *.example.com to match one "
            "leftmost label (RFC 8461 §4.1)"
        ) from None
    return ("*." if value.startswith("*.") else "") + name


class MtaStsSettings(_Strict):
    mode: MtaStsMode = Field(description="enforce, testing or none (RFC 8461 §3.2)")
    mx: Strings = Field(
        default_factory=empty_list,
        description="MX host patterns the policy allows, e.g. mx1.example.com or "
        "*.mail.protection.outlook.com; required unless mode is none",
    )
    max_age: StrictInt = Field(
        604800,
        ge=0,
        le=MAX_AGE_LIMIT,
        description="seconds senders cache the policy (0..31557600, default one week)",
    )
    host: MtaStsHost | None = Field(
        None,
        description="publish the mta-sts.<domain> web host record too: {cname: ...} or "
        "{ip4: [...], ip6: [...]}",
    )

    @field_validator("mx")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        out = [check_mx_pattern(v) for v in value]
        if len(set(out)) != len(out):
            raise ValueError("an mx pattern is listed twice; list each once")
        return out

    @model_validator(mode="after")
    def _mx_required(self) -> MtaStsSettings:
        if self.mode is not MtaStsMode.none and not self.mx:
            raise ValueError(
                f"mode {self.mode.value} needs at least one mx pattern, e.g. "
                "mx: ['*.example.com'] (RFC 8461 §3.2)"
            )
        return self


# --- TLS-RPT --------------------------------------------------------------------------------


class TlsRptSettings(_Strict):
    rua: Strings = Field(
        description="report destinations: mailto:tls-reports@example.com and/or "
        "https://reports.example.com/tlsrpt (RFC 8460 §3)"
    )

    @field_validator("rua")
    @classmethod
    def _rua(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one report destination (RFC 8460 §3: rua is required)")
        out = []
        for uri in value:
            scheme = uri.split(":", 1)[0].lower()
            if scheme == "mailto":
                out.append(check_mailto(uri, "TLS-RPT destination", "RFC 8460 §3"))
            elif scheme == "https":
                out.append(check_https_url(uri, "TLS-RPT destination", "RFC 8460 §3"))
            else:
                raise ValueError(
                    f"{uri!r} is not a TLS-RPT destination: use mailto:tls-reports@example.com "
                    "or an https:// URL (RFC 8460 §3)"
                )
        return out


# --- BIMI -----------------------------------------------------------------------------------


class BimiSettings(_Strict):
    selector: str = Field(
        "default", description="BIMI selector: the record goes at <selector>._bimi"
    )
    logo: str | None = Field(
        None, description="l=: the https URL of the SVG Tiny PS logo receivers fetch"
    )
    logo_file: str | None = Field(
        None,
        description="a local copy of the logo, relative to the policy file, checked against "
        "the SVG Tiny PS rules before the record is published",
    )
    authority: str | None = Field(
        None, description="a=: the https URL of the mark certificate (VMC/CMC, PEM)"
    )
    decline: StrictBool = Field(
        False, description="publish `v=BIMI1; l=; a=;`: this domain has no logo, on purpose"
    )

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        return check_selector(value, "BIMI selector")

    @field_validator("logo", "authority")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_https_url(value, "BIMI URL", "BIMI draft §4.2")

    @model_validator(mode="after")
    def _logo_or_decline(self) -> BimiSettings:
        if self.decline and (self.logo or self.logo_file or self.authority):
            raise ValueError(
                "decline: true publishes an empty record; remove logo, logo_file and authority"
            )
        if not self.decline and not self.logo:
            raise ValueError(
                "give logo: https://.../logo.svg (the URL receivers fetch), or decline: true"
            )
        return self

"""Policy settings for DKIM keys we generate and hold (RFC 6376, 8301, 8463).

A `dkim:` entry is either a fixed key (`selector:`) or a rotating one
(`rotate: 90d` with a selector `prefix:`); rotating selectors carry their date
and live in the committed rotation state file (dkim/rotation.py).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..dkim.keys import (
    DkimKeyError,
    check_published_key,
    check_rsa_bits,
    public_key_from_b64,
)
from ..names import check_selector, is_label
from ..redact import looks_secret
from .base import _Strict

AlgorithmName = Literal["ed25519", "rsa"]

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: Any) -> timedelta:
    """`90d`, `12w`, `36h`, `1d12h` or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value).strip().lower().replace(" ", "")
        if text.isdigit():
            seconds = int(text)
        else:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"{value!r} is not a duration: write e.g. 90d, 12w, 36h or 1d12h "
                    "(s, m, h, d, w)"
                )
            seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{value!r}: a duration must be positive")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """timedelta -> the shortest `90d` / `36h` / `1d12h` form, for messages."""
    seconds = int(value.total_seconds())
    out = ""
    for unit in ("d", "h", "m", "s"):
        n, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if n:
            out += f"{n}{unit}"
    return out or "0s"


class DkimKey(_Strict):
    """A DKIM key we generate and hold: published at `<selector>._domainkey`.

    Fixed: `{selector: relay2026a, algorithm: ed25519}`.  Rotating:
    `{rotate: 90d, prefix: relay, algorithms: [ed25519, rsa]}`, whose selectors
    are `relay-YYYYMMDD-ed` / `relay-YYYYMMDD-rsa` (dkim/rotation.py).
    """

    selector: str | None = Field(
        None, description="DKIM selector (one or more DNS labels), e.g. 'relay2026a'"
    )
    algorithm: AlgorithmName = Field("rsa", description="ed25519 (RFC 8463) or rsa (RFC 8301)")
    bits: StrictInt = Field(2048, description="RSA key size: 2048 (default) up to 4096")
    testing: StrictBool = Field(False, description="publish t=y while testing (RFC 6376 §3.6.1)")
    public_key: str | None = Field(
        None,
        description="the p= value, when the private key is held elsewhere; "
        "checked against the keystore when both exist",
    )
    # RFC 6376 §3.6.1 tags beyond v/k/p/t.
    hash_algorithms: list[Literal["sha256"]] | None = Field(
        None, description="h=: acceptable hash algorithms (sha256 only: RFC 8301 forbids sha1)"
    )
    service: list[Literal["*", "email", "tlsrpt"]] | None = Field(
        None, description="s=: service types, e.g. [tlsrpt] for a TLS-RPT signing key"
    )
    notes: str | None = Field(None, description="n=: notes for humans reading the record")
    # Rotation.
    rotate: timedelta | None = Field(
        None, description="rotate the key this often, e.g. 90d; selectors then carry their date"
    )
    prefix: str | None = Field(
        None, description="rotating selectors start with this label, e.g. 'relay'"
    )
    algorithms: list[AlgorithmName] | None = Field(
        None, description="rotate one key per algorithm (dual signing), e.g. [ed25519, rsa]"
    )
    publish_ahead: timedelta = Field(
        timedelta(days=2),
        description="a new key is published this long before it signs (at least 2x TTL)",
    )
    retire_for: timedelta = Field(
        timedelta(days=7),
        description="a replaced key stays published this long for mail in flight (>= 2x TTL)",
    )
    revoke_for: timedelta = Field(
        timedelta(days=7),
        description="a retired key is published revoked (p= empty) this long before removal",
    )

    @field_validator("rotate", "publish_ahead", "retire_for", "revoke_for", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        return None if value is None else check_selector(value)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        # The date suffix makes the label longer: keep room for `-YYYYMMDD-rsa` (13).
        if value is not None and (not is_label(value) or len(value) > 50):
            raise ValueError(
                f"{value!r} is not a valid selector prefix: one DNS label of letters, digits "
                "and hyphens, at most 50 characters (the date is appended)"
            )
        return None if value is None else value.lower()

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Never quote the value: a private key pasted here must not reach a log.
        if value is None:
            return None
        if "PRIVATE KEY" in value.upper() or (looks_secret(value) and "PUBLIC KEY" not in value):
            raise ValueError(
                "public_key holds a PRIVATE key (not shown): remove it from the policy file "
                "and give the public p= value; treat that key as exposed and replace it"
            )
        if "-----" in value:
            raise ValueError(
                "public_key is a PEM block: give only the base64 text between its BEGIN and "
                "END lines (the p= value), on one line"
            )
        compact = re.sub(r"\s+", "", value)
        if not compact or not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", compact):
            raise ValueError(
                "public_key is not base64: give the p= value of the DKIM record "
                "(letters, digits, + and /, maybe = at the end)"
            )
        if "algorithm" not in info.data:
            return value  # the algorithm has its own error; one error per cause
        try:
            check_published_key(public_key_from_b64(info.data["algorithm"], compact))
        except DkimKeyError as e:
            raise ValueError(f"public_key: {e}") from None
        return value

    @field_validator("notes")
    @classmethod
    def _notes(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("n= notes must be printable text on one line")
        return value

    @model_validator(mode="after")
    def _shape(self) -> DkimKey:
        if self.algorithm == "rsa":
            try:
                check_rsa_bits(self.bits)
            except DkimKeyError as e:
                raise ValueError(f"{e}: use 2048 (default) to 4096 bits") from None
        if self.rotate is None:
            if self.selector is None:
                raise ValueError(
                    "a dkim key needs a `selector:` (a fixed key) or `rotate:` with `prefix:` "
                    "(a rotating key)"
                )
            if self.prefix is not None or self.algorithms is not None:
                raise ValueError(
                    "`prefix:` and `algorithms:` apply to rotating keys: add `rotate:` "
                    "(e.g. 90d) or use `selector:` and `algorithm:`"
                )
            return self
        if self.selector is not None:
            raise ValueError(
                "a rotating key has no fixed `selector:`; give `prefix:` instead (selectors "
                "become <prefix>-YYYYMMDD-<ed|rsa>)"
            )
        if self.prefix is None:
            raise ValueError("a rotating key needs `prefix:`, e.g. prefix: relay")
        if self.public_key is not None:
            raise ValueError(
                "a rotating key takes its public keys from the rotation state file, not "
                "`public_key:`"
            )
        if self.algorithms is not None and len(set(self.algorithms)) != len(self.algorithms):
            raise ValueError("`algorithms:` lists an algorithm twice")
        return self

    @property
    def rotation_algorithms(self) -> list[AlgorithmName]:
        """The algorithms a rotating key keeps one key each for."""
        return list(self.algorithms) if self.algorithms else [self.algorithm]

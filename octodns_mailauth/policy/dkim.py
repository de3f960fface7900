"""Policy settings for DKIM keys we generate and hold (RFC 6376, 8301, 8463)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..names import is_selector
from .base import _Strict


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

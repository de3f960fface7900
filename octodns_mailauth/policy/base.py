"""Shared pieces of the policy models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..names import is_hostname, normalize


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_hostname(value: str, what: str) -> str:
    if not is_hostname(value, allow_service_labels=True):
        raise ValueError(
            f"{value!r} is not a valid {what}: expected a fully qualified domain name "
            "such as spf.example.net"
        )
    return normalize(value)

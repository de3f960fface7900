"""The `reports:` settings of the processor (and the CLI's flags over them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from ..errors import MailAuthError


class ReportsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    db: str = Field(
        description="the SQLite evidence store `octodns-mailauth reports ingest` fills "
        "(relative to the working directory, as octoDNS paths are)"
    )
    days: StrictInt = Field(
        30, ge=1, le=400, description="how many days of reports the rollout gate reads"
    )
    gate: Literal["warn", "fail"] = Field(
        "warn",
        description="what a blocked next stage is: a warning, or an error that stops "
        "validate and octodns-sync",
    )
    min_messages: StrictInt = Field(
        10,
        ge=1,
        description="messages in the window from one source (or failing for one declared "
        "sender) that count as real volume rather than noise",
    )


def parse_reports_settings(value: Any, where: str) -> ReportsSettings | None:
    """`reports:` as written in the octoDNS config; errors name the key and the fix."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"db": value}
    try:
        return ReportsSettings.model_validate(value)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise MailAuthError(
            f"{where}.reports{'.' + key if key else ''}: {err['msg']} (reports takes db, "
            "days, gate: warn|fail, min_messages)"
        ) from None

"""Where the CLI finds policies, keys, the SPF lock and extra catalog entries.

From an octoDNS config (the `processors:` entry whose class is our processor,
so the CLI and `octodns-sync` read the same settings) or from flags.  Paths are
relative to the working directory, as in octoDNS itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import MailAuthError
from ..integration.config import ConfigError, OctoConfig, ProcessorSettings, load_config
from ..integration.zonemap import ZoneMap


class UsageError(Exception):
    """Bad flags, a missing file, an unreadable config: exit 2 with this text."""


@dataclass(frozen=True)
class Settings(ProcessorSettings):
    """The processor's settings (from --config, else the defaults) with the flags over
    them (`reports` parsed: a ReportsSettings), and the octoDNS config itself."""

    id: str = "mailauth"
    policies: Path | None = None  # type: ignore[assignment]  # --policies or --config
    octo: OctoConfig | None = None  # the octoDNS config, when one was given
    zones: ZoneMap | None = None  # its zones and which run the processor


def read_config(path: Path, processor_id: str | None) -> Settings:
    """The processor's settings and the zones, as octoDNS reads the config."""
    try:
        octo = load_config(path)
        s = octo.processor(processor_id)
        zones = octo.zone_map(s.id)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    reports = None
    if s.reports is not None:
        # Lazy, as below: a pydantic model every command would build for nothing
        # unless the config has `reports:`.
        from ..reports.settings import parse_reports_settings

        try:
            reports = parse_reports_settings(s.reports, f"{path}: processors.{s.id}")
        except MailAuthError as e:
            raise UsageError(str(e)) from None
    return Settings(**{**vars(s), "reports": reports}, octo=octo, zones=zones)


def resolve(args: Any) -> Settings:
    """Config first, then flags override it."""
    settings = Settings()
    if getattr(args, "config", None):
        settings = read_config(Path(args.config), getattr(args, "processor", None))
    flags: dict[str, Any] = {
        key: Path(getattr(args, key))
        for key in ("policies", "keys", "spf_lock")
        if getattr(args, key, None)
    }
    if getattr(args, "catalog", None):
        flags["catalog"] = tuple(args.catalog)
    db, days = getattr(args, "reports_db", None), getattr(args, "reports_days", None)
    if db or days is not None:
        flags["reports"] = reports_over(settings.reports, db, days, "--reports-days")
    return replace(settings, **flags)


def reports_over(current: Any, db: str | None, days: int | None, days_flag: str) -> Any:
    """The processor's `reports:` settings with a database and a window from flags."""
    from pydantic import ValidationError

    from ..reports.settings import ReportsSettings  # lazy: see read_config

    data = current.model_dump() if current is not None else {}
    if db:
        data["db"] = db
    if days is not None:
        if days < 1:
            raise UsageError(f"{days_flag} {days}: give at least 1")
        data["days"] = days
    if "db" not in data:
        raise UsageError(f"{days_flag} needs a reports database: give --reports-db FILE too")
    try:
        return ReportsSettings.model_validate(data)
    except ValidationError as e:  # the config's values passed: the days are out of range
        raise UsageError(f"{days_flag} {days}: {e.errors()[0]['msg']}") from None


def require_policies(settings: Settings) -> Path:
    if settings.policies is None:
        raise UsageError(
            "no policies: give --config FILE (an octoDNS config with the mail policy "
            "processor) or --policies DIR"
        )
    if not settings.policies.is_dir():
        raise UsageError(
            f"policy folder {settings.policies} does not exist or is not a folder "
            f"(paths are relative to the working directory {Path.cwd()})"
        )
    return settings.policies

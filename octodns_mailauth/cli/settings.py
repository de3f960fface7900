"""Where the CLI finds policies, keys, the SPF lock and extra catalog entries.

From an octoDNS config (the `processors:` entry whose class is our processor,
so the CLI and `octodns-sync` read the same settings) or from flags.  Paths are
relative to the working directory, as in octoDNS itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dkim.keystore import DEFAULT_PASSPHRASE_ENV
from ..errors import MailAuthError
from ..integration.config import ConfigError, OctoConfig, load_config
from ..integration.zonemap import ZoneMap


class UsageError(Exception):
    """Bad flags, a missing file, an unreadable config: exit 2 with this text."""


@dataclass
class Settings:
    policies: Path | None = None
    keys: Path | None = None
    spf_lock: Path | None = None
    dkim_state: Path | None = None
    catalog: list[str] = field(default_factory=list)
    passphrase_env: str = DEFAULT_PASSPHRASE_ENV
    config: Path | None = None
    octo: OctoConfig | None = None  # the octoDNS config, when one was given
    zones: ZoneMap | None = None  # its zones and which run the processor
    processor_id: str | None = None
    generate_keys: bool = False  # as the processor: a missing key is an error unless true
    reports: Any = None  # reports.settings.ReportsSettings: the evidence store and gate


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
    return Settings(
        policies=s.policies,
        keys=s.keys,
        spf_lock=s.spf_lock,
        dkim_state=s.dkim_state,
        catalog=list(s.catalog),
        passphrase_env=s.passphrase_env,
        config=path,
        octo=octo,
        zones=zones,
        processor_id=s.id,
        generate_keys=s.generate_keys,
        reports=reports,
    )


def resolve(args: Any) -> Settings:
    """Config first, then flags override it."""
    settings = Settings()
    if getattr(args, "config", None):
        settings = read_config(Path(args.config), getattr(args, "processor", None))
    if getattr(args, "policies", None):
        settings.policies = Path(args.policies)
    if getattr(args, "keys", None):
        settings.keys = Path(args.keys)
    if getattr(args, "spf_lock", None):
        settings.spf_lock = Path(args.spf_lock)
    if getattr(args, "catalog", None):
        settings.catalog = list(args.catalog)
    db, days = getattr(args, "reports_db", None), getattr(args, "reports_days", None)
    if db or days is not None:
        settings.reports = reports_over(settings.reports, db, days, "--reports-days")
    return settings


def reports_over(current: Any, db: str | None, days: int | None, days_flag: str) -> Any:
    """The processor's `reports:` settings with a database and a window from flags."""
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
    return ReportsSettings.model_validate(data)


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

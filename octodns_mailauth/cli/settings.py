"""Where the CLI finds policies, keys, the SPF lock and extra catalog entries.

From an octoDNS config (the `processors:` entry whose class is our processor,
so the CLI and `octodns-sync` read the same settings) or from flags.  Paths are
relative to the working directory, as in octoDNS itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROCESSOR_CLASSES = {
    "octodns_mailauth.MailAuthProcessor",
    "octodns_mailauth.processor.MailAuthProcessor",
}


class UsageError(Exception):
    """Bad flags, a missing file, an unreadable config: exit 2 with this text."""


@dataclass
class Settings:
    policies: Path | None = None
    keys: Path | None = None
    spf_lock: Path | None = None
    dkim_state: Path | None = None
    catalog: list[str] = field(default_factory=list)
    passphrase_env: str = "OCTODNS_MAILAUTH_KEY_PASSPHRASE"
    zones: list[str] | None = None  # the zones of the octoDNS config, when one was given
    config: Path | None = None
    raw: dict[str, Any] | None = None  # the whole octoDNS config, for its YAML sources
    processor_id: str | None = None
    generate_keys: bool = False  # as the processor: a missing key is an error unless true
    reports: Any = None  # reports.settings.ReportsSettings: the evidence store and gate


def _tolerant_loader() -> type:
    """A safe YAML loader that accepts octoDNS's custom tags (`!include`...) as
    plain values: we only need the processor's few settings."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def any_tag(loader: Any, suffix: str, node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", any_tag)
    return Loader


def read_config(path: Path, processor_id: str | None) -> Settings:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"{path}: cannot read octoDNS config: {e.strerror}") from None
    try:
        data = yaml.load(text, Loader=_tolerant_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise UsageError(f"{where}: the octoDNS config is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: an octoDNS config must be a YAML mapping")
    processors = data.get("processors") or {}
    if not isinstance(processors, dict):
        raise UsageError(f"{path}: `processors:` must be a mapping of processor ids")
    ours = {
        pid: conf
        for pid, conf in processors.items()
        if isinstance(conf, dict) and conf.get("class") in PROCESSOR_CLASSES
    }
    if processor_id is not None:
        if processor_id not in ours:
            raise UsageError(
                f"{path}: no processor {processor_id!r} of class "
                f"octodns_mailauth.MailAuthProcessor (found: {', '.join(ours) or 'none'})"
            )
        ours = {processor_id: ours[processor_id]}
    if not ours:
        raise UsageError(
            f"{path}: no processor of class octodns_mailauth.MailAuthProcessor under "
            "processors:; add one, or give --policies DIR"
        )
    if len(ours) > 1:
        raise UsageError(
            f"{path}: several mail policy processors ({', '.join(ours)}); choose one with "
            "--processor ID"
        )
    pid, conf = next(iter(ours.items()))
    if not conf.get("policies"):
        raise UsageError(f"{path}: the mail policy processor has no `policies:` folder")
    where = f"{path}: processors.{pid}"
    conf = _with_secrets(conf, where)
    # octoDNS passes these to MailAuthProcessor(...) as they are; a number or a
    # list where a path belongs must be a clear message here, not a TypeError.
    for key in ("policies", "keys", "spf_lock", "dkim_state", "passphrase_env"):
        _require_text(where, key, conf.get(key))
    catalog = conf.get("catalog") or []
    if isinstance(catalog, list):
        for i, item in enumerate(catalog):
            _require_text(where, f"catalog[{i}]", item)
    else:
        _require_text(where, "catalog", catalog, "a folder path or a list of folder paths")
    generate = conf.get("generate_keys", False)
    if not isinstance(generate, bool):
        raise UsageError(
            f"{where}.generate_keys: expected true or false, got {type(generate).__name__} "
            f"{generate!r}"
        )
    reports = None
    if conf.get("reports") is not None:
        from ..errors import MailAuthError
        from ..reports.settings import parse_reports_settings

        try:
            reports = parse_reports_settings(conf["reports"], where)
        except MailAuthError as e:
            raise UsageError(str(e)) from None
    zones_conf = data.get("zones") or {}
    if not isinstance(zones_conf, dict):
        raise UsageError(f"{path}: `zones:` must be a mapping of zone names")
    zones: list[str] | None = [str(z).rstrip(".").lower() for z in zones_conf]
    if any("*" in str(z) for z in zones_conf):
        # Dynamic zones ('*') are listed by the sources at sync time: the set of
        # zones is unknown here, so zone checks cover the static zones only.
        data = dict(data, zones={z: c for z, c in zones_conf.items() if "*" not in str(z)})
        zones = None
    return Settings(
        policies=Path(conf["policies"]),
        keys=Path(conf["keys"]) if conf.get("keys") else None,
        spf_lock=Path(conf["spf_lock"]) if conf.get("spf_lock") else None,
        dkim_state=Path(conf["dkim_state"]) if conf.get("dkim_state") else None,
        catalog=[catalog] if isinstance(catalog, str) else list(catalog),
        passphrase_env=conf.get("passphrase_env") or "OCTODNS_MAILAUTH_KEY_PASSPHRASE",
        zones=zones,
        config=path,
        raw=data,
        processor_id=str(pid),
        generate_keys=generate,
        reports=reports,
    )


def _with_secrets(conf: dict[str, Any], where: str) -> dict[str, Any]:
    """octoDNS reads `env/NAME` values from the environment; so do we."""
    import os

    out = dict(conf)
    for key, value in conf.items():
        if isinstance(value, str) and value.startswith("env/"):
            name = value[len("env/") :]
            if name not in os.environ:
                raise UsageError(
                    f"{where}.{key}: environment variable {name} is not set ({value})"
                )
            out[key] = os.environ[name]
    return out


def _require_text(where: str, key: str, value: Any, expected: str = "a string") -> None:
    """None/absent is fine (the default applies); anything but a string is not."""
    if value is None or isinstance(value, str):
        return
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise UsageError(
        f"{where}.{key}: expected {expected}, got {type(value).__name__} {shown}; "
        f"quote it or fix the value in the octoDNS config"
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
    if getattr(args, "reports_db", None) or getattr(args, "reports_days", None):
        settings.reports = _reports_override(settings.reports, args)
    return settings


def _reports_override(current: Any, args: Any) -> Any:
    from ..reports.settings import ReportsSettings

    data = current.model_dump() if current is not None else {}
    if getattr(args, "reports_db", None):
        data["db"] = args.reports_db
    if getattr(args, "reports_days", None) is not None:
        if args.reports_days < 1:
            raise UsageError(f"--reports-days {args.reports_days}: give at least 1")
        data["days"] = args.reports_days
    if "db" not in data:
        raise UsageError("--reports-days needs a reports database: give --reports-db FILE too")
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

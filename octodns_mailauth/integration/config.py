"""The octoDNS config as octoDNS reads it, for the CLI and the processor.

octoDNS's own YAML loader (`!include`, sorted-key checks off as in its
Manager) and its secret handlers (`env/NAME`, plus any `secret_handlers:`),
applied to settings the way `Manager._build_kwargs` does: a string `a/b` whose
`a` names a handler is that handler's secret `b`.  Zones are read from their
YamlProvider sources only: every other provider needs credentials or network.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MailAuthError
from ..names import normalize
from .zonemap import ZoneMap

PROCESSOR_CLASSES = {
    "octodns_mailauth.MailAuthProcessor",
    "octodns_mailauth.processor.MailAuthProcessor",
}
YAML_PROVIDERS = {
    "octodns.provider.yaml.YamlProvider",
    "octodns.provider.yaml.SplitYamlProvider",
}
DEFAULT_PASSPHRASE_ENV = "OCTODNS_MAILAUTH_KEY_PASSPHRASE"


class ConfigError(MailAuthError):
    """The octoDNS config cannot be read or has wrong settings; the text says where."""


@dataclass(frozen=True)
class ProcessorSettings:
    """The processor's settings, checked the same way for octoDNS and the CLI."""

    id: str
    policies: Path
    keys: Path | None = None
    catalog: tuple[str, ...] = ()
    generate_keys: bool = False
    passphrase_env: str = DEFAULT_PASSPHRASE_ENV
    spf_lock: Path | None = None
    dkim_state: Path | None = None
    config_file: Path | None = None
    lenient: bool = False
    reports: Any = None  # as written; reports/settings.py checks it

    @classmethod
    def check(cls, where: str, id: str, values: Mapping[str, Any]) -> ProcessorSettings:
        """`values` as octoDNS passes them (secrets already fetched).  A number or
        a list where a path belongs, or "false" for a flag, is a clear error."""
        if not values.get("policies"):
            raise ConfigError(f"{where}: the mail policy processor has no `policies:` folder")
        for key in ("policies", "keys", "spf_lock", "dkim_state", "passphrase_env", "config_file"):
            _require(where, key, values.get(key), str, "a string")
        catalog = values.get("catalog") or []
        if isinstance(catalog, list):
            for i, item in enumerate(catalog):
                _require(where, f"catalog[{i}]", item, str, "a string")
        else:
            _require(where, "catalog", catalog, str, "a folder path or a list of folder paths")
            catalog = [catalog]
        for flag in ("generate_keys", "lenient"):
            if not isinstance(values.get(flag, False), bool):
                # octoDNS passes values as written; "false" (or env/VAR) is truthy.
                raise ConfigError(f"{where}.{flag} must be true or false, not {values[flag]!r}")

        def path(key: str) -> Path | None:
            return Path(values[key]) if values.get(key) else None

        return cls(
            id=id,
            policies=Path(values["policies"]),
            keys=path("keys"),
            catalog=tuple(catalog),
            generate_keys=bool(values.get("generate_keys", False)),
            passphrase_env=values.get("passphrase_env") or DEFAULT_PASSPHRASE_ENV,
            spf_lock=path("spf_lock"),
            dkim_state=path("dkim_state"),
            config_file=path("config_file"),
            lenient=bool(values.get("lenient", False)),
            reports=values.get("reports"),
        )


def _require(where: str, key: str, value: Any, kind: type, expected: str) -> None:
    """None/absent is fine (the default applies); a value of another type is not."""
    if value is None or isinstance(value, kind):
        return
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise ConfigError(
        f"{where}.{key}: expected {expected}, got {type(value).__name__} {shown}; "
        "fix the value in the octoDNS config"
    )


@dataclass(frozen=True)
class SourceZone:
    zone: Any  # octodns.zone.Zone with the YAML sources' records
    skipped: tuple[str, ...] = ()  # source ids not read (not YAML)


@dataclass
class OctoConfig:
    """One octoDNS config file, read once."""

    path: Path
    data: Mapping[str, Any]
    _handlers: dict[str, Any] = field(default_factory=dict, repr=False)

    # --- settings -------------------------------------------------------------------------

    def settings(self, key: str, conf: Mapping[str, Any]) -> dict[str, Any]:
        """`conf` with secrets fetched, as octoDNS hands it to a class (minus `class`)."""
        return self._build(conf, key)

    def processor(self, pid: str | None = None) -> ProcessorSettings:
        """Our processor's settings: the one `pid`, or the only one of our class."""
        processors = self._mapping("processors")
        ours = {
            str(k): v
            for k, v in processors.items()
            if isinstance(v, Mapping) and v.get("class") in PROCESSOR_CLASSES
        }
        if pid is not None:
            if pid not in ours:
                raise ConfigError(
                    f"{self.path}: no processor {pid!r} of class "
                    f"octodns_mailauth.MailAuthProcessor (found: {', '.join(ours) or 'none'})"
                )
            ours = {pid: ours[pid]}
        if not ours:
            raise ConfigError(
                f"{self.path}: no processor of class octodns_mailauth.MailAuthProcessor under "
                "processors:; add one, or give --policies DIR"
            )
        if len(ours) > 1:
            raise ConfigError(
                f"{self.path}: several mail policy processors ({', '.join(ours)}); choose one "
                "with --processor ID"
            )
        pid, conf = next(iter(ours.items()))
        where = f"{self.path}: processors.{pid}"
        values = {k: v for k, v in self.settings(where, conf).items() if k != "class"}
        return ProcessorSettings.check(where, pid, values)

    # --- zones ----------------------------------------------------------------------------

    def zone_map(self, pid: str) -> ZoneMap:
        """Every zone (dynamic `*` zones listed from their YAML sources, as
        octoDNS's Manager lists them) and which of them run processor `pid`."""
        manager = self.data.get("manager") or {}
        everywhere = pid in (manager.get("processors") or []) or pid in (
            manager.get("post_processors") or []
        )
        zones: set[str] = set()
        mine: set[str] = set()
        complete = True
        for name, conf in self._mapping("zones").items():
            conf = conf if isinstance(conf, Mapping) else {}
            runs = everywhere or pid in (conf.get("processors") or [])
            if str(name).startswith("*"):
                listed = self._list_zones(conf)
                if listed is None:
                    complete = False
                    continue
                names = listed - zones
            else:
                names = {normalize(str(name))}
            zones |= names
            if runs:
                mine |= names
        return ZoneMap(frozenset(zones), frozenset(mine), complete)

    def zone_names(self, zmap: ZoneMap) -> list[str]:
        """The zones in config order, dynamic ones (listed in `zmap`) last."""
        static = [normalize(str(z)) for z in self._mapping("zones") if not str(z).startswith("*")]
        return static + sorted(zmap.zones - set(static))

    def _list_zones(self, conf: Mapping[str, Any]) -> set[str] | None:
        """The zones a dynamic entry stands for; None when a source is not YAML."""
        from fnmatch import filter as fnmatch_filter
        from re import compile as re_compile

        found: set[str] = set()
        for sid in conf.get("sources") or []:
            provider = self._yaml_provider(str(sid))
            if provider is None:
                return None
            found |= set(provider.list_zones())
        if conf.get("glob"):
            found = set(fnmatch_filter(found, conf["glob"]))
        elif conf.get("regex"):
            pattern = re_compile(conf["regex"])
            found = {z for z in found if pattern.search(z)}
        return {normalize(z) for z in found}

    def source_zone(self, zone: str, zmap: ZoneMap) -> SourceZone:
        """Zone `zone` populated from its YamlProvider sources, as octodns-validate reads it."""
        from octodns.zone import Zone

        conf = self.zone_conf(zone)
        subs = {z[: -len(zone) - 1] for z in zmap.zones if z.endswith("." + zone)}
        result = Zone(f"{zone}.", subs)
        skipped = []
        for sid in conf.get("sources") or []:
            provider = self._yaml_provider(str(sid))
            if provider is None:
                skipped.append(str(sid))
                continue
            try:
                provider.populate(result)
            except Exception as e:  # noqa: BLE001 - octoDNS raises many kinds; all "fix the source"
                raise ConfigError(
                    f"{self.path}: source {sid!r} for zone {zone}.: {type(e).__name__}: {e}"
                ) from None
        return SourceZone(result, tuple(skipped))

    def zone_conf(self, zone: str) -> Mapping[str, Any]:
        dynamic: Mapping[str, Any] = {}
        for name, conf in self._mapping("zones").items():
            if normalize(str(name)) == zone:
                return conf if isinstance(conf, Mapping) else {}
            if str(name).startswith("*") and isinstance(conf, Mapping):
                dynamic = dynamic or conf
        return dynamic

    def _yaml_provider(self, sid: str) -> Any:
        from octodns.provider.yaml import SplitYamlProvider, YamlProvider

        conf = self._mapping("providers").get(sid)
        if not isinstance(conf, Mapping) or conf.get("class") not in YAML_PROVIDERS:
            return None
        cls = SplitYamlProvider if conf["class"].endswith("SplitYamlProvider") else YamlProvider
        settings = self.settings(f"providers.{sid}", conf)
        settings.pop("class")
        try:
            return cls(sid, **settings)
        except Exception as e:  # noqa: BLE001 - as octoDNS: "Incorrect provider config"
            raise ConfigError(
                f"{self.path}: providers.{sid} ({conf['class']}): {type(e).__name__}: {e}"
            ) from None

    # --- helpers --------------------------------------------------------------------------

    def _mapping(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.path}: `{key}:` must be a mapping")
        return value

    def _build(self, source: Mapping[str, Any], where: str) -> dict[str, Any]:
        """As octoDNS's Manager._build_kwargs: nested mappings too."""
        out = {}
        for key, value in source.items():
            if isinstance(value, Mapping):
                value = self._build(value, where)
            elif isinstance(value, str) and "/" in value:
                handler, name = value.split("/", 1)
                if handler in self.handlers:
                    try:
                        value = self.handlers[handler].fetch(name, source)
                    except Exception as e:  # noqa: BLE001 - any handler's failure, named
                        raise ConfigError(f"{where}.{key}: {e}") from None
            out[key] = value
        return out

    @property
    def handlers(self) -> dict[str, Any]:
        """`env` first, so other handlers' settings can use env/ values (as octoDNS)."""
        if not self._handlers:
            from octodns.secret.environ import EnvironSecrets

            self._handlers["env"] = EnvironSecrets("env")
            for name, conf in self._mapping("secret_handlers").items():
                settings = self._build(conf, f"secret_handlers.{name}")
                module, _, cls = str(settings.pop("class", "")).rpartition(".")
                try:
                    self._handlers[name] = getattr(importlib.import_module(module), cls)(
                        name, **settings
                    )
                except Exception as e:  # noqa: BLE001 - a handler we cannot build
                    raise ConfigError(
                        f"{self.path}: secret_handlers.{name}: {type(e).__name__}: {e}"
                    ) from None
        return self._handlers


def load_config(path: str | Path) -> OctoConfig:
    """Read an octoDNS config file with octoDNS's loader."""
    from octodns.yaml import safe_load
    from yaml import YAMLError

    path = Path(path)
    # octoDNS logs chatter (validator defaults) at WARNING; with no handler
    # Python would print it on stderr between our findings.
    logging.getLogger().addHandler(logging.NullHandler())
    try:
        with open(path, encoding="utf-8") as fh:
            data = safe_load(fh, enforce_order=False)
    except OSError as e:
        raise ConfigError(
            f"{e.filename or path}: cannot read octoDNS config: {e.strerror}"
        ) from None
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{mark.name}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: the octoDNS config is not valid YAML: {e}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: an octoDNS config must be a YAML mapping")
    return OctoConfig(path, data)

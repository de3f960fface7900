"""The octoDNS config as octoDNS reads it, for the CLI and the processor.

octoDNS's own YAML loader (`!include`, sorted-key checks off as in its
Manager) and its secret handlers (`env/NAME`, plus any `secret_handlers:`),
applied to settings the way `Manager._build_kwargs` does: a string `a/b` whose
`a` names a handler is that handler's secret `b`.  Zones are read from their
YamlProvider sources only: every other provider needs credentials or network.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from fnmatch import filter as fnmatch_filter
from pathlib import Path
from re import compile as re_compile
from typing import Any, NamedTuple

import yaml
from octodns.secret.environ import EnvironSecrets
from octodns.yaml import ContextLoader, safe_load
from octodns.zone import Zone
from yaml import YAMLError
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from ..dkim.keystore import DEFAULT_PASSPHRASE_ENV
from ..errors import MailAuthError
from ..names import normalize
from ..redact import shown
from .zonemap import ZoneMap

PROCESSOR_CLASSES = {
    "octodns_mailauth.MailAuthProcessor",
    "octodns_mailauth.processor.MailAuthProcessor",
}
YAML_PROVIDERS = {
    "octodns.provider.yaml.YamlProvider",
    "octodns.provider.yaml.SplitYamlProvider",
}


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
        """`values` as octoDNS passes them (secrets fetched).  An unknown key, a
        number or a list where a path belongs, or "false" for a flag is an error."""
        known = [f.name for f in fields(cls) if f.name != "id"]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        if not values.get("policies"):
            raise ConfigError(f"{where}: the mail policy processor has no `policies:` folder")
        catalog = values.get("catalog") or []
        items = catalog if isinstance(catalog, list) else [catalog]
        names = [f"catalog[{i}]" for i in range(len(items))] if items is catalog else ["catalog"]
        for key, value in [*((k, values.get(k)) for k in _TEXT), *zip(names, items, strict=True)]:
            if value is not None and not isinstance(value, str):
                raise ConfigError(
                    f"{where}.{key}: expected a string, got {type(value).__name__} "
                    f"{shown(value)}; fix the value in the octoDNS config"
                )
        for flag in ("generate_keys", "lenient"):
            if not isinstance(values.get(flag, False), bool):
                # octoDNS passes values as written; "false" (or env/VAR) is truthy.
                raise ConfigError(f"{where}.{flag} must be true or false, not {values[flag]!r}")
        out = {k: v for k, v in values.items() if v is not None}
        out.update({k: Path(values[k]) for k in _TEXT[:-1] if values.get(k)}, catalog=tuple(items))
        return cls(id=id, **out)


# Settings that are text; all but the last are paths.
_TEXT = ("policies", "keys", "spf_lock", "dkim_state", "config_file", "passphrase_env")


@dataclass(frozen=True)
class SourceZone:
    zone: Any  # octodns.zone.Zone with the YAML sources' records
    skipped: tuple[str, ...] = ()  # source ids not read (not YAML)


class _Zones(NamedTuple):
    conf: dict[str, Mapping[str, Any]]  # each zone's config, in octoDNS's order
    dynamic: frozenset[str]  # those listed by a dynamic `*` entry
    complete: bool  # False when a dynamic entry's sources could not be listed (not YAML)


@dataclass
class OctoConfig:
    """One octoDNS config file, read once."""

    path: Path
    data: Mapping[str, Any]
    _handlers: dict[str, Any] = field(default_factory=dict, repr=False)

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
        values = {k: v for k, v in self._build(conf, where).items() if k != "class"}
        return ProcessorSettings.check(where, pid, values)

    # --- zones ----------------------------------------------------------------------------

    def zone_map(self, pid: str) -> ZoneMap:
        """Every zone (dynamic `*` zones listed from their YAML sources, as
        octoDNS's Manager lists them) and which of them run processor `pid`."""
        manager = self.data.get("manager") or {}
        everywhere = pid in (manager.get("processors") or []) or pid in (
            manager.get("post_processors") or []
        )
        zones = self._zones
        mine = {
            z
            for z, conf in zones.conf.items()
            if everywhere or pid in (conf.get("processors") or [])
        }
        return ZoneMap(frozenset(zones.conf), frozenset(mine), zones.complete)

    def zone_names(self) -> list[str]:
        """The zones in the order octoDNS validates them: the config's, dynamic ones last."""
        return list(self._zones.conf)

    def is_static(self, zone: str) -> bool:
        """Whether `zone` is named in the config (not listed by a dynamic `*` entry):
        octoDNS validates these in config order, dynamic ones after them in no fixed order."""
        return zone in self._zones.conf and zone not in self._zones.dynamic

    @functools.cached_property
    def _zones(self) -> _Zones:
        """As octoDNS's `Manager._preprocess_zones`: the named zones, then each
        dynamic entry's listed zones not configured before it."""
        entries = [
            (str(name), conf if isinstance(conf, Mapping) else {})
            for name, conf in self._mapping("zones").items()
        ]
        out = {normalize(name): conf for name, conf in entries if not name.startswith("*")}
        dynamic: set[str] = set()
        complete = True
        for name, conf in entries:
            if name.startswith("*"):
                listed = self._list_zones(conf)
                if listed is None:
                    complete = False
                    continue
                for zone in sorted(listed - set(out)):
                    out[zone] = conf
                    dynamic.add(zone)
        return _Zones(out, frozenset(dynamic), complete)

    def _list_zones(self, conf: Mapping[str, Any]) -> set[str] | None:
        """The zones a dynamic entry stands for; None when a source is not YAML."""
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
        conf = self.zone_conf(zone)
        subs = {z[: -len(zone) - 1] for z in zmap.zones if z.endswith("." + zone)}
        try:  # its `validators:` too, as octoDNS's Manager.get_zone: which checks it turns off
            result = Zone(f"{zone}.", subs, validators=conf.get("validators"))
        except Exception as e:  # noqa: BLE001 - octoDNS's ZoneException and kin, named
            raise ConfigError(f"{self.path}: zone {zone}.: {e}") from None
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
        return self._zones.conf.get(zone, {})

    def _yaml_provider(self, sid: str) -> Any:
        conf = self._mapping("providers").get(sid)
        if not isinstance(conf, Mapping) or conf.get("class") not in YAML_PROVIDERS:
            return None
        return self._new(f"providers.{sid}", sid, conf)

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
            self._handlers["env"] = EnvironSecrets("env")
            for name, conf in self._mapping("secret_handlers").items():
                self._handlers[name] = self._new(f"secret_handlers.{name}", name, conf)
        return self._handlers

    def _new(self, where: str, name: str, conf: Mapping[str, Any]) -> Any:
        """An instance of `conf`'s class built from the rest of it, as octoDNS does."""
        settings = self._build(conf, where)
        module, _, cls = str(settings.pop("class", "")).rpartition(".")
        try:
            return getattr(importlib.import_module(module), cls)(name, **settings)
        except Exception as e:  # noqa: BLE001 - as octoDNS: "Incorrect ... config"
            raise ConfigError(f"{self.path}: {where}: {type(e).__name__}: {e}") from None


@functools.cache
def _fast_loader() -> Any:
    """octoDNS's ContextLoader (its `!include`, the context of each mapping) on
    libyaml's parser: a config of thousands of zones reads ~7x faster, and the
    processor reads the config octoDNS has just read."""

    class Loader(yaml.cyaml.CParser, ContextLoader):  # type: ignore[misc,name-defined]
        def __init__(self, stream: Any) -> None:
            yaml.cyaml.CParser.__init__(self, stream)  # type: ignore[attr-defined]
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._name = getattr(stream, "name", "<unicode string>")

        def get_mark(self) -> Any:
            # `!include` asks for the file being read: libyaml's parser has no reader.
            return yaml.Mark(self._name, 0, 0, 0, None, None)

    return Loader


def load_config(path: str | Path) -> OctoConfig:
    """Read an octoDNS config file as octoDNS's loader reads it."""
    path = Path(path)
    # octoDNS logs chatter (validator defaults) at WARNING; with no handler
    # Python would print it on stderr between our findings.
    logging.getLogger().addHandler(logging.NullHandler())
    try:
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.load(fh, _fast_loader()) if yaml.__with_libyaml__ else None
        except YAMLError:
            data = None  # octoDNS's own loader says what is wrong, as octoDNS would
        if data is None:
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

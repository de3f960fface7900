"""The zones of an octoDNS config as `octodns-sync` would read them, offline,
so `validate`/`records --config` run the checks that need the zone's own
records (MTA-STS mx patterns, parked domains with MX, TXT beside our SPF and
the 450-octet split, CNAME conflicts) and agree with the processor.

Only YamlProvider sources are read: every other provider needs credentials or
network.  Zones with other sources are checked against their YAML part only,
and `validate` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .settings import UsageError

YAML_PROVIDERS = {
    "octodns.provider.yaml.YamlProvider",
    "octodns.provider.yaml.SplitYamlProvider",
}


@dataclass
class SourceZone:
    zone: Any  # octodns.zone.Zone with the YAML sources' records
    skipped: list[str] = field(default_factory=list)  # source ids not read (not YAML)


def _sub_zones(name: str, all_zones: list[str]) -> set[str]:
    """Like octoDNS's Manager: configured zones below `name`, relative to it
    (a YamlProvider refuses records that belong to a sub-zone)."""
    out = set()
    for other in all_zones:
        if other != name and other.endswith("." + name):
            out.add(other[: -len(name) - 1])
    return out


def read_zone(config: dict[str, Any], config_path: Any, zone: str) -> SourceZone | None:
    """The zone `zone` (no trailing dot) populated from its YamlProvider sources,
    or None when the config has no such zone."""
    import logging

    from octodns.zone import Zone

    # octoDNS logs chatter (validator defaults) at WARNING; with no handler
    # Python would print it on stderr between our findings.
    logging.getLogger().addHandler(logging.NullHandler())
    zones = config.get("zones") or {}
    names = {str(z).rstrip(".").lower(): z for z in zones}
    if zone not in names:
        return None
    zconf = zones[names[zone]] or {}
    if not isinstance(zconf, dict):
        raise UsageError(f"{config_path}: zones.{names[zone]} must be a mapping")
    providers = config.get("providers") or {}
    if not isinstance(providers, dict):
        raise UsageError(f"{config_path}: `providers:` must be a mapping of provider ids")
    sources = zconf.get("sources") or []
    if not isinstance(sources, list):
        raise UsageError(f"{config_path}: zones.{names[zone]}.sources must be a list")
    result = SourceZone(Zone(f"{zone}.", _sub_zones(zone, list(names))))
    for sid in sources:
        pconf = providers.get(sid)
        if not isinstance(pconf, dict) or pconf.get("class") not in YAML_PROVIDERS:
            result.skipped.append(str(sid))
            continue
        _populate(pconf, str(sid), result.zone, config_path)
    return result


def _populate(pconf: dict[str, Any], sid: str, zone: Any, config_path: Any) -> None:
    from octodns.provider.yaml import SplitYamlProvider, YamlProvider

    settings = {k: v for k, v in pconf.items() if k != "class"}
    cls = SplitYamlProvider if pconf["class"].endswith("SplitYamlProvider") else YamlProvider
    try:
        provider = cls(sid, **settings)
        provider.populate(zone)
    except Exception as e:  # noqa: BLE001 - octoDNS raises many kinds; all are "fix the source"
        raise UsageError(
            f"{config_path}: source {sid!r} ({pconf['class']}) for zone {zone.name}: "
            f"{type(e).__name__}: {e}"
        ) from None

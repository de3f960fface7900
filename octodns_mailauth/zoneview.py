"""The zone's own records as text, for compile checks that depend on them
(MTA-STS mx patterns vs the zone's MX, a parked domain with MX, TXT beside our
SPF, CNAME conflicts).  Shared by the processor (the zone octoDNS hands it)
and the CLI (a zone read from the config's YAML sources), so both see the
same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import ZoneView
from .names import normalize
from .records import unescape_txt

__all__ = ["value_text", "zone_view"]


def value_text(value: Any) -> str:
    """An octoDNS value as zone-file-like text (`10 mx.example.` for MX)."""
    if hasattr(value, "exchange"):
        return f"{value.preference} {value.exchange}"
    return str(value)


def zone_view(zone: Any, ours: Callable[[Any], bool]) -> ZoneView:
    """`{(fqdn, type): values}` of every record in the octoDNS `zone` for which
    `ours(record)` is false (records this processor added are not "the zone's")."""
    view: dict[tuple[str, str], tuple[str, ...]] = {}
    origin = normalize(zone.name)
    for record in zone.records:
        if ours(record):
            continue
        name = f"{record.name}.{origin}" if record.name else origin
        values = getattr(record, "values", None) or [record.value]
        texts = tuple(
            unescape_txt(str(v)) if record._type == "TXT" else value_text(v) for v in values
        )
        view[(name.lower(), record._type)] = texts
    return view

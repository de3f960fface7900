"""The zone's own records as text, for compile checks that depend on them
(MTA-STS mx patterns vs the zone's MX, a parked domain with MX, TXT beside our
SPF, CNAME conflicts).  Shared by the processor (the zone octoDNS hands it)
and the CLI (a zone read from the config's YAML sources), so both see the
same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .names import normalize
from .records.base import unescape_txt

__all__ = ["ZoneReads", "ZoneView", "value_text", "zone_view"]

ZoneView = Mapping[tuple[str, str], tuple[str, ...]]
"""Records already in the zone, by (absolute name, type), values as text."""

_Values = tuple[str, ...]


class ZoneReads(Mapping[tuple[str, str], _Values]):
    """A zone view that notes what a compile read of it, so the result can be
    reused for another view that agrees on all of it (`agrees`): the processor
    compiles a policy once per run, not once per zone view (integration/run.py).

    Reads are noted as narrowly as the steps ask: one (name, type), every record
    at one name (`at`), every record of one type at or below a name (`under`),
    whether the view is empty.  Iterating it notes the whole view."""

    def __init__(self, view: ZoneView | None = None) -> None:
        self._view: ZoneView = view or {}
        self._points: dict[tuple[str, str], _Values | None] = {}
        self._names: dict[str, tuple[tuple[tuple[str, str], _Values], ...]] = {}
        self._scans: dict[tuple[str, str], tuple[tuple[tuple[str, str], _Values], ...]] = {}
        self._empty: bool | None = None
        self._whole = False

    def __getitem__(self, key: tuple[str, str]) -> _Values:
        value = self._view.get(key)
        self._points[key] = value
        if value is None:
            raise KeyError(key)
        return value

    def __len__(self) -> int:
        self._empty = not self._view
        return len(self._view)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        self._whole = True
        return iter(self._view)

    def at(self, name: str) -> dict[str, _Values]:
        """Every record at `name`, by type."""
        found = _at(self._view, name)
        self._names[name] = found
        return {rtype: values for (_, rtype), values in found}

    def under(self, name: str, rtype: str) -> dict[str, _Values]:
        """Every `rtype` record at or below `name`, by owner name."""
        found = _under(self._view, name, rtype)
        self._scans[(name, rtype)] = found
        return {owner: values for (owner, _), values in found}

    def agrees(self, view: ZoneView | None) -> bool:
        """Whether `view` answers every read noted here as this one did."""
        view = view or {}
        if self._whole:
            return dict(view) == dict(self._view)
        if self._empty is not None and self._empty != (not view):
            return False
        return (
            all(view.get(key) == value for key, value in self._points.items())
            and all(_at(view, name) == found for name, found in self._names.items())
            and all(_under(view, n, t) == found for (n, t), found in self._scans.items())
        )


def _at(view: ZoneView, name: str) -> tuple[tuple[tuple[str, str], _Values], ...]:
    return tuple(sorted(item for item in view.items() if item[0][0] == name))


def _under(view: ZoneView, name: str, rtype: str) -> tuple[tuple[tuple[str, str], _Values], ...]:
    suffix = "." + name
    return tuple(
        sorted(
            ((owner, t), values)
            for (owner, t), values in view.items()
            if t == rtype and (owner == name or owner.endswith(suffix))
        )
    )


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
        view[(name.lower(), record._type)] = record_texts(record)
    return view


def record_texts(record: Any) -> tuple[str, ...]:
    """An octoDNS record's values as text receivers read (TXT unescaped)."""
    values = getattr(record, "values", None) or [record.value]
    return tuple(unescape_txt(str(v)) if record._type == "TXT" else value_text(v) for v in values)

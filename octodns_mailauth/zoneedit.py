"""Remove single values from an octoDNS YAML zone file, keeping every other
byte as it was (`octodns-mailauth init --remove-from-zone`).

Line-based: a value, a record or a name is cut out by the line span PyYAML
reports for its node.  The result is checked before it is written: loaded
again, it must equal the original minus exactly the removed values, or
nothing is written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from octodns.yaml import safe_load

from .errors import MailAuthError
from .records.base import unescape_txt


class ZoneEditError(MailAuthError):
    pass


@dataclass(frozen=True)
class Removal:
    name: str  # relative to the zone, '' for the apex
    type: str
    value: str  # as text (TXT unescaped; CNAME with its trailing dot)


def _text(rtype: str, node: Any) -> str | None:
    return _as_text(rtype, node.value) if isinstance(node, yaml.ScalarNode) else None


def _span(lines: list[str], node: Any, start: Any | None = None) -> tuple[int, int]:
    """[first line, line after the last) of a block node (0-based).  PyYAML ends a
    block node where the next token starts, so a line holding only indentation
    or a '- ' before that mark is not the node's; nor are trailing comment or
    blank lines (they describe what follows)."""
    first = (start or node).start_mark.line
    end = node.end_mark
    last = end.line
    if end.line < len(lines) and lines[end.line][: end.column].strip(" -"):
        last = end.line + 1
    last = max(last, first + 1)
    while last - 1 > first and (
        not lines[last - 1].strip() or lines[last - 1].lstrip().startswith("#")
    ):
        last -= 1
    return first, last


def _get(mapping: Any, key: str) -> tuple[Any, Any] | None:
    for k, v in mapping.value:
        if k.value == key:
            return k, v
    return None


def plan_removals(text: str, removals: list[Removal], where: str) -> list[tuple[int, int]]:
    """The line spans to delete for `removals`; ZoneEditError when a value is
    not where it should be or is written in a form we do not cut (flow style)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise ZoneEditError(f"{where}: cannot read the zone file: {e}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ZoneEditError(f"{where}: not a mapping of record names")
    lines = text.splitlines(keepends=True)
    spans: list[tuple[int, int]] = []
    by_name: dict[str, list[Removal]] = {}
    for r in removals:
        by_name.setdefault(r.name, []).append(r)
    for name, wanted in by_name.items():
        found = _get(root, name)
        if found is None:
            raise ZoneEditError(f"{where}: no name {name!r}")
        key_node, value_node = found
        records = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        removed_records = []
        record_spans: list[tuple[int, int]] = []
        for record in records:
            if not isinstance(record, yaml.MappingNode) or record.flow_style:
                continue
            type_node = _get(record, "type")
            if type_node is None:
                continue
            rtype = str(type_node[1].value).upper()
            mine = [r for r in wanted if r.type == rtype]
            if not mine:
                continue
            single = _get(record, "value")
            many = _get(record, "values")
            if single is not None:
                if _text(rtype, single[1]) in {r.value for r in mine}:
                    removed_records.append(record)
                    wanted = [r for r in wanted if r not in mine]
                continue
            if many is None:
                continue
            items = many[1].value if isinstance(many[1], yaml.SequenceNode) else [many[1]]
            if isinstance(many[1], yaml.SequenceNode) and many[1].flow_style:
                raise ZoneEditError(
                    f"{where}:{many[1].start_mark.line + 1}: values written in flow style "
                    "([a, b]); remove the value by hand"
                )
            hits = [i for i in items if _text(rtype, i) in {r.value for r in mine}]
            if not hits:
                continue
            for r in mine:
                if any(_text(rtype, i) == r.value for i in hits):
                    wanted = [w for w in wanted if w is not r]
            if len(hits) == len(items):
                removed_records.append(record)
            else:
                for item in hits:
                    # A block sequence item starts at its '- ' on the item's line.
                    record_spans.append(_span(lines, item))
        if wanted:
            missing = ", ".join(f"{w.type} {w.value!r}" for w in wanted)
            raise ZoneEditError(f"{where}: {name or '@'}: not found as written: {missing}")
        if len(removed_records) == len(records):
            spans.append(_span(lines, value_node, key_node))  # the whole name goes
            continue
        spans.extend(record_spans)
        for record in removed_records:
            spans.append(_span(lines, record))
    return spans


def remove_values(path: Path, removals: list[Removal]) -> str:
    """The zone file's text with `removals` cut out, checked; not written."""
    original = path.read_text(encoding="utf-8")
    spans = plan_removals(original, removals, str(path))
    lines = original.splitlines(keepends=True)
    drop: set[int] = set()
    for first, last in spans:
        drop.update(range(first, last))
    kept = "".join(line for i, line in enumerate(lines) if i not in drop)
    before = safe_load(original, enforce_order=False) or {}
    after = safe_load(kept, enforce_order=False) or {}
    if _without(before, removals) != after:
        raise ZoneEditError(
            f"{path}: removing the values by line would change other records; remove them "
            "by hand (nothing was written)"
        )
    return kept


def _without(data: dict[str, Any], removals: list[Removal]) -> dict[str, Any]:
    """The loaded zone file minus the removed values (what the edit must give)."""
    out = copy.deepcopy(data)
    for r in removals:
        entry = out.get(r.name)
        records = entry if isinstance(entry, list) else [entry]
        keep = []
        for rec in records:
            if not isinstance(rec, dict) or str(rec.get("type", "")).upper() != r.type:
                keep.append(rec)
                continue
            if "value" in rec and _as_text(r.type, rec["value"]) == r.value:
                continue
            if "values" in rec:
                rec = dict(rec)
                rec["values"] = [v for v in rec["values"] if _as_text(r.type, v) != r.value]
                if not rec["values"]:
                    continue
            keep.append(rec)
        if not keep:
            out.pop(r.name, None)
        elif isinstance(entry, list):
            out[r.name] = keep
        else:
            out[r.name] = keep[0]
    return out


def _as_text(rtype: str, value: Any) -> str:
    return unescape_txt(str(value)) if rtype == "TXT" else str(value)
